#!/usr/bin/env bash
# Lay out Debian's WordNet 3.0 (wordnet-base + wordnet-sense-index) for nltk under DEST/corpora/wordnet.
# Test-only asset: nltk.download cannot reach its server here. Debian omits the `lexnames` file,
# which nltk needs; ours is the standard 45-line list from lexnames(5WN).
set -euo pipefail
dest=${1:?usage: install_wordnet.sh NLTK_DATA_DIR}
src=/usr/share/wordnet
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$src/data.noun" ] || [ ! -f "$src/index.sense" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      wordnet-base wordnet-sense-index) >/dev/null
  else
    echo "install_wordnet.sh: WordNet missing; run: sudo apt-get install wordnet-base wordnet-sense-index" >&2
    exit 1
  fi
fi
out="$dest/corpora/wordnet"
mkdir -p "$out"
for f in data.{noun,verb,adj,adv} index.{noun,verb,adj,adv} {noun,verb,adj,adv}.exc cntlist.rev index.sense; do
  cp -f "$src/$f" "$out/$f"
done
cp "$here/wordnet_lexnames" "$out/lexnames"
echo "WordNet 3.0 for nltk in $out"
