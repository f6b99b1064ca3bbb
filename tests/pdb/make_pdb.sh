#!/usr/bin/env bash
# Regenerate tiny.dll, tiny.pdb, tiny.map and tiny.json from tiny.c.
#
#   apt-get install -y clang lld      # Debian: clang 14, lld 14
#   bash tests/pdb/make_pdb.sh
#
# The build is reproducible: /Brepro derives the PE timestamp and the PDB GUID
# from the content, the compilation directory is recorded as "." and the PDB's
# source paths are rebased on C:\src\tiny, so the output does not depend on the
# checkout's location.  Another clang/lld version gives other (equally valid)
# bytes and another GUID; tiny.json always describes the files next to it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for tool in clang lld-link python3; do
    command -v "$tool" >/dev/null || { echo "make_pdb.sh: $tool not found (apt-get install -y clang lld)" >&2; exit 2; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/tiny.c" "$work/"
cd "$work"
clang --target=x86_64-pc-windows-msvc -c -O1 -fno-inline -gcodeview -g \
    -ffunction-sections -ffile-compilation-dir=. -fno-ident tiny.c -o tiny.obj
lld-link /dll /debug /noentry /nodefaultlib /opt:noicf /Brepro \
    /out:tiny.dll /pdb:tiny.pdb '/pdbaltpath:%_PDB%' '/pdbsourcepath:C:\src\tiny' \
    /map:tiny.map tiny.obj
python3 "$here/pdbfacts.py" "$work" \
    "clang=$(clang --version | head -n1)" "lld-link=$(lld-link --version | head -n1)"
cp tiny.dll tiny.pdb tiny.map tiny.json "$here/"
ls -l "$here"/tiny.dll "$here"/tiny.pdb "$here"/tiny.map "$here"/tiny.json
