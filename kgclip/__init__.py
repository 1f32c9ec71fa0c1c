"""What the three stages share, under all of them: atomic writes (`atomic`), the vocabulary of the two
artifact contracts (`vocab`: negative types), reading WebDataset on both webdataset majors (`wds`), the
open_clip model factory with kgclip's model configs (`models`), the progress displays (`progress`) and
the report page (`page`). A stage imports this package and
the artifact contract of the stage before it; never a sibling stage's helpers."""
