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
