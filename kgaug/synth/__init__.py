"""The embedded compositional world: procedurally rendered scenes in Visual Genome's JSON format."""
