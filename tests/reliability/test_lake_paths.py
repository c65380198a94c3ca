"""Lake paths cannot escape the lake: objects are named by content hash and format only, a
relative path with ``..`` is refused, and a tampered manifest cannot make a load read or
write outside the lake. Odd file names (quotes, shell and SQL metacharacters, a line break)
are data, never code, and errors about them stay on one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from purchase_patterns.errors import PurchasePatternsError
from purchase_patterns.lake import Lake, LakePathError
from purchase_patterns.pipeline import land_inputs, load_pending, new_summary
from purchase_patterns.settings import load_settings


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURCHASE_PATTERNS_")}
    return subprocess.run([sys.executable, "-m", "purchase_patterns", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def sample(kaggle_csv: Path, n: int = 20) -> str:
    return "\n".join(kaggle_csv.read_text(encoding="utf-8").splitlines()[: n + 1]) + "\n"


def test_a_dotdot_path_lands_inside_the_lake(tmp_path: Path, kaggle_csv: Path) -> None:
    """``--input <dir>/in/sub/../../etc/passwd``: the file is read where the path leads, and
    everything written goes under the lake, named by hash, never by the given name."""
    target = tmp_path / "etc" / "passwd"
    target.parent.mkdir()
    target.write_text(sample(kaggle_csv), encoding="utf-8")
    (tmp_path / "in" / "sub").mkdir(parents=True)
    given = f"{tmp_path}/in/sub/../../etc/passwd"
    home = tmp_path / "home"
    before = {p for p in files_under(tmp_path) if home not in p.parents}
    res = cli("--home", str(home), "--json", "ingest", "--input", given)
    assert res.returncode == 0, res.stderr
    [inp] = json.loads(res.stdout)["inputs"]
    assert inp["rows_loaded"] == 20
    # nothing outside home changed; everything in the lake is inside it, named by hash
    assert {p for p in files_under(tmp_path) if home not in p.parents} == before
    lake = (home / "lake").resolve()
    sha = inp["batch_id"]
    for p in files_under(lake):
        assert p.resolve().is_relative_to(lake)
        assert "passwd" not in p.name and ".." not in p.parts
    assert [p.name for p in files_under(lake / "raw")] == [f"{sha}.dat"]
    manifest = json.loads((lake / "_manifest" / f"{sha}.json").read_text())
    assert manifest["source_file"] == "passwd"


@pytest.mark.parametrize("rel", ["../../etc/passwd", "raw/../../../etc/passwd",
                                 "raw/source=kaggle/..", "..\\..\\etc\\passwd"])
def test_relative_paths_with_dotdot_are_refused(tmp_path: Path, rel: str) -> None:
    lake = Lake(str(tmp_path / "lake"))
    for op in (lake.uri, lake.exists, lambda r: lake.write_json(r, {"x": 1})):
        with pytest.raises(LakePathError, match="escapes the lake"):
            op(rel)
    assert issubclass(LakePathError, PurchasePatternsError)  # one line, exit 2 in the CLI
    assert not (tmp_path / "etc").exists()


def test_an_absolute_path_stays_inside(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    uri = lake.write_json("/etc/passwd.json", {"x": 1})
    assert Path(uri).resolve().is_relative_to((tmp_path / "lake").resolve())


def test_a_tampered_manifest_cannot_read_outside(tmp_path: Path, kaggle_csv: Path) -> None:
    """A landed entry whose raw path was edited to point outside the lake: the load refuses
    it in one line and loads nothing; the other batch loads."""
    secret = tmp_path / "secret.csv"
    secret.write_text(sample(kaggle_csv), encoding="utf-8")
    good = tmp_path / "good.csv"
    good.write_text(sample(kaggle_csv, 10), encoding="utf-8")
    settings = load_settings(home=tmp_path / "home")
    bad_entry, _good_entry = land_inputs(settings, [secret, good])
    lake = Lake(settings.lake)
    manifest = Path(settings.lake) / "_manifest" / f"{bad_entry['batch_id']}.json"
    entry = json.loads(manifest.read_text())
    entry["raw_rel"] = "../../secret.csv"
    manifest.write_text(json.dumps(entry))
    summary = new_summary(settings, "load")
    results = load_pending(settings, summary)
    assert sorted(r.rows_loaded for r in results) == [0, 10]
    [error] = summary.errors
    assert "escapes the lake" in error and "\n" not in error
    assert lake.manifest_entry(bad_entry["batch_id"])["status"] == "landed"


@pytest.mark.parametrize("name", ["'; drop table raw.purchases; --.csv", "$(touch pwned).csv",
                                  "line\nbreak.csv", "ünïcödé 名前.csv"])
def test_odd_file_names(tmp_path: Path, kaggle_csv: Path, name: str) -> None:
    good = tmp_path / name
    good.write_text(sample(kaggle_csv, 5), encoding="utf-8")
    bad = tmp_path / ("bad " + name)
    bad.write_bytes(b"not, a, purchases, file\n1,2,3,4\n")
    home = tmp_path / "home"
    res = cli("--home", str(home), "--json", "ingest", "--input", str(good), "--input", str(bad))
    assert res.returncode == 2
    summary = json.loads(res.stdout)
    assert summary["inputs"][0]["rows_loaded"] == 5
    [error] = summary["errors"]
    assert "\n" not in error and "no recognisable header" in error
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    human = cli("--home", str(home), "ingest", "--input", str(bad))
    assert len([ln for ln in human.stderr.splitlines() if ln.startswith("error:")]) == 1
    assert "Traceback" not in human.stderr
