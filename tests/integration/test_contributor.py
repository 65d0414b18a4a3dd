"""The contributor kit works as CONTRIBUTING.md says: `make hooks` installs the pre-commit hook,
which refuses staged C++ that is not clang-formatted (judging the staged blob, not the work tree)
and lets a formatted change through; the CI workflow for forks runs the same command as .ci/run."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from zg import ROOT


def git(repo, *args, env=None):
    return subprocess.run(["git", "-C", str(repo)] + list(args), capture_output=True, text=True, env=env)


def test_pre_commit_hook_refuses_unformatted_cpp():
    tmp = Path(tempfile.mkdtemp(prefix="zonegate-hooks."))
    try:
        repo = tmp / "clone"
        assert git(ROOT, "clone", "-q", "--no-hardlinks", str(ROOT), str(repo)).returncode == 0
        # The hook and target under test are the work tree's (they may not be committed yet).
        (repo / "tests" / "lib" / "hooks").mkdir(exist_ok=True)
        for f in ("tests/lib/hooks/pre-commit", "Makefile"):
            shutil.copy(ROOT / f, repo / f)
        out = subprocess.run(["make", "-s", "hooks"], cwd=repo, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        hook = Path(git(repo, "rev-parse", "--git-path", "hooks").stdout.strip())
        if not hook.is_absolute():
            hook = repo / hook
        assert os.access(hook / "pre-commit", os.X_OK)
        env = dict(os.environ, ZONEGATE_HOOK_UNIT="0", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")
        src = repo / "proxy" / "common" / "hook_probe.cpp"
        src.write_text("// Probe.\nint   probe( int x ){return x+1;}\n")
        git(repo, "add", str(src))
        refused = git(repo, "commit", "-q", "-m", "unformatted", env=env)
        assert refused.returncode != 0
        assert "not clang-formatted" in refused.stderr and "hook_probe.cpp" in refused.stderr
        # Formatted in the work tree but not staged: the staged blob is what counts.
        src.write_text("// Probe.\nint probe(int x) {\n  return x + 1;\n}\n")
        assert git(repo, "commit", "-q", "-m", "still unformatted", env=env).returncode != 0
        git(repo, "add", str(src))
        ok = git(repo, "commit", "-q", "-m", "formatted", env=env)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert git(repo, "log", "-1", "--format=%s").stdout.strip() == "formatted"
    finally:
        shutil.rmtree(tmp)


def test_fork_ci_workflow_runs_the_ci_command():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    job = wf["jobs"]["test"]
    assert job["container"] == "debian:12"
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "bash .ci/run" in runs
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert job["timeout-minutes"] <= 90


DOC_FILES = ["README.md", "CONTRIBUTING.md", "deploy/README.md"] + sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))


def doc_text():
    return {f: (ROOT / f).read_text() for f in DOC_FILES}


def test_every_make_target_the_docs_name_exists():
    """`make X` in any doc is a target of the Makefile."""
    import re
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    named = set()
    for f, text in doc_text().items():
        for m in re.finditer(r"`make ([a-z][a-z-]*)", text):
            named.add((m.group(1), f))
    assert len({t for t, _ in named}) >= 10, named
    for target, f in sorted(named):
        assert target in targets, f"{f} names `make {target}`, which the Makefile does not have"


def test_every_suite_and_repository_path_the_docs_name_exists():
    """`tests/run.sh --suites S` names suites run.sh knows, and every repository path a doc
    names in backticks (tests/..., deploy/..., proxy/..., docs/...) is there, but for what a run
    makes (git-ignored)."""
    import re
    run_sh = (ROOT / "tests" / "run.sh").read_text()
    known = set(re.search(r'SUITES="([^"]+)"', run_sh).group(1).split(","))
    assert {"unit", "integration", "lint", "package"} <= known
    paths = 0
    for f, text in doc_text().items():
        for m in re.finditer(r"--suites ([a-z,-]+)", text):
            for s in m.group(1).split(","):
                assert s in known, f"{f}: tests/run.sh has no suite {s}"
        for m in re.finditer(r"`((?:tests|deploy|proxy|docs|extension|sql|cmake)/[A-Za-z0-9_./-]+)", text):
            p = m.group(1).rstrip(".")
            if any(ch in p for ch in "*{<") or "X" in p.split("/")[-1]:
                continue
            if git(ROOT, "check-ignore", "-q", p).returncode == 0:
                continue  # made by a run (tests/.artifacts/, build-*/), not kept in the tree
            paths += 1
            assert (ROOT / p).exists(), f"{f} names {p}, which is not in the repository"
    assert paths >= 20
