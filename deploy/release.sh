#!/usr/bin/env bash
# Cut a release of pulsarflow: deploy/release.sh VERSION   (e.g. deploy/release.sh 0.2.0)
#   1. refuses unless the working tree is clean and VERSION was not released before
#   2. checks that the schemas read every frozen release (pulsarflow schemas check)
#   3. sets the package version, freezes schemas/ into schemas/history/VERSION exactly as shipped
#   4. commits "Release VERSION" and tags it vVERSION
# Readers find a writer's schema by its fingerprint among the frozen releases, so every
# release that may have written messages or state must be frozen here.
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:?usage: deploy/release.sh VERSION (for example 0.2.0)}"
python="${PYTHON:-.venv/bin/python}"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "release: VERSION must look like 1.2.3, got '$version'" >&2; exit 2; }
[ -z "$(git status --porcelain)" ] || { echo "release: the working tree has changes; commit or stash them first" >&2; exit 2; }
[ ! -e "schemas/history/$version" ] || { echo "release: schemas/history/$version exists: $version was released" >&2; exit 2; }
"$python" -m pulsarflow.cli schemas check
sed -i -E "s/^(    version=)\"[^\"]+\"/\1\"$version\"/" setup.py
sed -i -E "s/^__version__ = \"[^\"]+\"/__version__ = \"$version\"/" pulsarflow/__init__.py
grep -q "version=\"$version\"" setup.py && grep -q "^__version__ = \"$version\"" pulsarflow/__init__.py \
  || { echo "release: could not set the version in setup.py and pulsarflow/__init__.py" >&2; exit 1; }
"$python" -m pulsarflow.cli schemas freeze "$version"
git add setup.py pulsarflow/__init__.py "schemas/history/$version"
git commit -q -m "Release $version: schemas frozen in schemas/history/$version"
git tag -a "v$version" -m "pulsarflow $version"
echo "released $version (tag v$version)"
