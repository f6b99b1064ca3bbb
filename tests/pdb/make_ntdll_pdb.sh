#!/usr/bin/env bash
# Regenerate the ntdll.dll stand-in from ntdll.c and ntdll.def, for x64 and x86:
#
#   ntdll_x64/ntdll.dll ntdll_x64/ntdll.pdb ntdll_x64/ntdll.map ntdll_x64.json
#   ntdll_x86/ntdll.dll ntdll_x86/ntdll.pdb ntdll_x86/ntdll.map ntdll_x86.json
#
#   apt-get install -y clang lld      # Debian: clang 14, lld 14
#   bash tests/pdb/make_ntdll_pdb.sh
#
# Reproducible as make_pdb.sh is: /Brepro derives the PE timestamp and the PDB GUID
# from the content, the compilation directory is recorded as "." and the PDB's source
# paths are rebased on C:\src\ntdll.  Both builds run in a folder named like their
# output folder, with the same relative file names, so the PDB's object and source
# names do not depend on the checkout either.  Another clang/lld version gives other
# (equally valid) bytes and other GUIDs; the JSON files always describe the files next
# to them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for tool in clang lld-link python3; do
    command -v "$tool" >/dev/null || { echo "make_ntdll_pdb.sh: $tool not found (apt-get install -y clang lld)" >&2; exit 2; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
clang_version="$(clang --version | head -n1)"
lld_version="$(lld-link --version | head -n1)"
for arch in x64 x86; do
    case "$arch" in
        x64) target=x86_64-pc-windows-msvc ;;
        x86) target=i686-pc-windows-msvc ;;
    esac
    mkdir "$work/ntdll_$arch"
    cp "$here/ntdll.c" "$here/ntdll.def" "$work/ntdll_$arch/"
    (
        cd "$work/ntdll_$arch"
        clang --target="$target" -c -O1 -fno-inline -gcodeview -g \
            -ffunction-sections -fdata-sections -ffile-compilation-dir=. -fno-ident \
            ntdll.c -o ntdll.obj
        lld-link /dll /debug /noentry /nodefaultlib /opt:noicf /Brepro \
            /def:ntdll.def /out:ntdll.dll /pdb:ntdll.pdb '/pdbaltpath:%_PDB%' \
            '/pdbsourcepath:C:\src\ntdll' /map:ntdll.map ntdll.obj
    )
    python3 "$here/ntdllfacts.py" "$work" "$arch" "clang=$clang_version" "lld-link=$lld_version"
    mkdir -p "$here/ntdll_$arch"
    cp "$work/ntdll_$arch/ntdll.dll" "$work/ntdll_$arch/ntdll.pdb" "$work/ntdll_$arch/ntdll.map" \
        "$here/ntdll_$arch/"
    cp "$work/ntdll_$arch.json" "$here/"
    ls -l "$here/ntdll_$arch"/ntdll.dll "$here/ntdll_$arch"/ntdll.pdb \
        "$here/ntdll_$arch"/ntdll.map "$here/ntdll_$arch.json"
done
