#!/bin/sh
# Fills corpus/<target>/ with seeds from the test fixtures, the sample feeds and the
# shipped config (docs/fuzzing.md). Run from fuzz/: sh seed.sh
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/feed corpus/clean corpus/query corpus/config
for f in ../tests/fixtures/*.xml ../tests/fixtures/*.json ../tests/fixtures/feeds/*.* \
         ../tests/fixtures/feeds/encodings/*.xml ../config/samples/*; do
  cp "$f" "corpus/feed/$(basename "$f")"
done
cp ../tests/fixtures/*.html ../tests/fixtures/*.txt corpus/clean/
# Each query of the shipped config, one seed each, and a few odd ones.
awk "/^query = '''/{q=1; n++; next} /^'''/{q=0} q{print > (\"corpus/query/shipped-\" n)}" ../config/newswatch.toml
printf '%s' '(ceasefire OR truce) AND NOT "war games"' > corpus/query/phrase
printf '%s' 'negotiat* NEAR/5 (russia OR ukraine)' > corpus/query/near
cp ../config/newswatch.toml corpus/config/newswatch.toml
