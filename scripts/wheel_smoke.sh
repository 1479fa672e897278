#!/usr/bin/env bash
# The wheel smoke test (CI, after setup): build cotgap's wheel, check it holds every source file,
# install it WITHOUT -e into a clean environment and run it there — `plugins`, `tasks`,
# `export --help`, and the plugin guide's shortest plugin (tests/fixtures/cotgap_shortest_plugin,
# installed from its own wheel) in a tiny run on a tiny model from the testing kit, then exported.
# Every other test runs on the editable install, which hides a module left out of the wheel.
#
# The clean environment: a new venv whose site-packages holds only the two wheels, plus a .pth
# that adds a folder of links to .venv's installed distributions, cotgap's editable install left
# out (its finder, its .pth, its dist-info). So `import cotgap` can only find the wheel's copy
# (checked below), while torch, vLLM, transformers, ... are reused as installed: a venv that
# installs the wheel's dependencies would download ~2 GB and take minutes; this takes seconds.
# What it does not check: that pip resolves the dependency pins (setup.sh's install does that).
#
# Usage: bash scripts/wheel_smoke.sh [python with cotgap's dependencies; default .venv/bin/python]
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-.venv/bin/python}
py="$(cd "$(dirname "$py")" && pwd)/$(basename "$py")"  # absolute, the venv's link kept (not resolved)
work=$(mktemp -d "${TMPDIR:-/tmp}/cotgap-wheel-XXXXXX")
trap '[ $? -eq 0 ] && rm -rf "$work" || echo "wheel smoke: failed; its files are in $work" >&2' EXIT
start=$SECONDS
step() { echo "wheel smoke: $* ($((SECONDS - start)) s)"; }
quiet() { "$@" >"$work/step.log" 2>&1 || { cat "$work/step.log" >&2; return 1; }; }  # output shown on failure

# 1. The wheel, built from a copy of the tree's files (tracked, and untracked but not ignored), so
#    setuptools' build/ and egg-info never land in the working tree.
mkdir -p "$work/src"
git ls-files -z --cached --others --exclude-standard \
  | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$work/src"
quiet "$py" -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" "$work/src"
wheel=$(ls "$work"/dist/cotgap-*.whl)
"$py" - "$wheel" "$work/src" <<'EOF'
"""Every source and data file of the three package folders is in the wheel, under its installed name."""
import sys
import zipfile
from pathlib import Path

wheel, src = sys.argv[1:]
names = set(zipfile.ZipFile(wheel).namelist())
installed = {"cotgap": "cotgap", "plugins": "cotgap_plugins", "task_configs": "cotgap_task_configs"}
missing = [f"{folder}/{path}" for folder, name in installed.items() for pattern in ("*.py", "*.yaml")
           for path in (p.relative_to(Path(src, folder)).as_posix() for p in Path(src, folder).rglob(pattern))
           if f"{name}/{path}" not in names]
sys.exit(f"wheel smoke: missing from the wheel: {missing}" if missing else 0)
EOF
step "built $(basename "$wheel"), every module and YAML in it"

# 2. The clean environment (see the top): a venv, the links, the wheels.
"$py" -m venv --without-pip "$work/env"
deps=$("$py" -c "import sysconfig; print(sysconfig.get_path('purelib'))")
# The links live inside the venv, in a folder named site-packages: dill (datasets' fingerprints)
# pickles a module by reference only when its file is under sys.prefix or a site-packages folder.
links="$work/env/linked/site-packages"
mkdir -p "$links"
for entry in "$deps"/*; do
  case "$(basename "$entry")" in
    __editable__*|cotgap-*|cotgap_*) ;;  # cotgap's editable install (and any fixture plugin)
    *) ln -s "$entry" "$links/" ;;
  esac
done
env_site=$("$work/env/bin/python" -c "import sysconfig; print(sysconfig.get_path('purelib'))")
echo "import site; site.addsitedir('$links')" >"$env_site/cotgap_deps.pth"
cp -r "$work/src/tests/fixtures/cotgap_shortest_plugin" "$work/shortest"
quiet "$work/env/bin/python" -m pip install -q --no-deps --no-build-isolation "$wheel" "$work/shortest"
step "installed into a clean venv"

# 3. Run it from outside the repository, with nothing from the source tree on the path.
cd "$work"
unset PYTHONPATH
export COTGAP_GENERATION_CACHE="$work/gc"
bin="$work/env/bin"
"$bin/python" -c "import cotgap, sys; assert cotgap.__file__.startswith(sys.prefix), cotgap.__file__"
[[ $("$bin/cotgap" plugins) == *shortest* ]] || { echo "wheel smoke: the shortest plugin is not listed" >&2; exit 1; }
[[ $("$bin/cotgap" tasks) == *synthetic_navigate* ]] || { echo "wheel smoke: no synthetic tasks" >&2; exit 1; }
"$bin/cotgap" export --help >/dev/null
step "plugins, tasks, export --help"
quiet "$bin/python" -c "from cotgap.testing import build_model; build_model('tiny-student')"
printf 'strategy_params: {k: 2}\ntraining: {epochs: 1}\n' >c.yaml
quiet "$bin/cotgap" run --strategy shortest --teacher scripted --student tiny-student --task synthetic_navigate \
  --limit 6 --backend hf --config c.yaml --out run
"$bin/python" -c "
import json; r = json.load(open('run/report.json'))
assert r['strategy']['name'] == 'shortest' and r['sources'][0]['kept'] == 2, r['sources']"
"$bin/cotgap" export run kept.jsonl --what kept --format chat-jsonl >/dev/null
[ "$(wc -l <kept.jsonl)" -eq 2 ] || { echo "wheel smoke: export wrote $(wc -l <kept.jsonl) rows, not 2" >&2; exit 1; }
step "the shortest plugin's tiny run, exported"
# The guide's own test of the plugin, through the testing kit (the entry point is not loaded: the
# kit registers the object it is given, and one strategy name may be registered once).
COTGAP_LOAD_PLUGINS="" quiet "$bin/python" -c "
from cotgap_shortest import Shortest
from cotgap.testing import FakeContext, run_strategy
assert len(Shortest().filter(FakeContext(params={'k': 2}), 't', FakeContext().generate_rationales('t'))) == 2
assert run_strategy(Shortest(), 'kit', strategy_params={'k': 2})['sources'][0]['kept'] == 2"
step "the guide's testing-kit test of the plugin: passed"
