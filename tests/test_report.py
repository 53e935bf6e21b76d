"""The HTML report: valid HTML, images embedded, nothing external; renders in headless Chromium if present."""
import base64
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from tests.helpers import make_record, write_all

from suite import cli
from suite.reporting import report


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        self.open.append(tag)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Two machines (A fast, B slow), two models, two seeds; B's cnn never reaches the target; A ran two torch."""
    root = tmp_path_factory.mktemp("report")
    recs = []
    for hw, scale in (("A", 1.0), ("B", 2.0)):
        for model, base in (("mlp", 10.0), ("cnn", 6.0)):
            for seed in (0, 1):
                reached = not (hw == "B" and model == "cnn")
                recs.append(make_record(hardware=hw, model=model, seed=seed, torch="2.11.0" if hw == "A" and seed == 0 else "2.10.0",
                                        ttt=base * scale + seed if reached else None,
                                        quality=0.8 + 0.05 * seed if reached else 0.7))  # a miss stays under 0.8
    write_all(root / "a", recs[:4])
    write_all(root / "b", recs[4:])
    out = root / "out" / "report.html"
    files, data = report.write_report([root / "a", root / "b"], out, baseline="A")
    return out, files, data


def test_report_files_and_sections(built):
    out, files, data = built
    assert [f.name for f in files[:2]] == ["report.html", "report.md"]
    assert {f.name for f in files[2:]} == {"runs.csv", "by_model.csv", "speedup_per_task.csv", "speedup_suite.csv"}
    text = out.read_text()
    for heading in ("By model", "By hardware (A, B)", "By torch version (on A)", "Speedup against hardware A",
                    "Plots", "Environment"):
        assert f">{heading}</h2>" in text
    md = files[1].read_text()
    assert "| toy | 1 | smoke | digits | test/accuracy &gt;= 0.8 | A | mlp | 2/2 | 10.5 range [10, 11] n=2 |" in md
    assert "not reached (0/2 reached)" in md  # B's cnn is shown, not dropped


def test_report_parses_embeds_images_and_references_nothing_external(built):
    out, _, _ = built
    parser = _Collect()
    parser.feed(out.read_text())
    parser.close()
    tags = [t for t, _ in parser.tags]
    assert tags[0] == "html" and "body" in tags and parser.open[-1] == "html"
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    images = [attrs["src"] for tag, attrs in parser.tags if tag == "img"]
    assert len(images) == 3  # one comparable group: learning curves, time-to-target, quality against time
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    refs = [v for _, attrs in parser.tags for k, v in attrs.items() if k in ("src", "href", "srcset", "data")]
    assert refs and all(v.startswith(("data:", "#")) for v in refs)
    assert "url(" not in out.read_text()


def test_run_all_report_step_and_cli_report(tmp_path, capsys):
    folder = write_all(tmp_path / "results", [make_record(seed=0), make_record(seed=1, ttt=None)])
    cli.report_into(folder)
    assert f"report: {folder / 'report.html'}" in capsys.readouterr().out
    assert (folder / "report.html").stat().st_size > 10_000
    assert cli.main(["report", str(folder), "--out", str(tmp_path / "x.txt")]) == 2
    (tmp_path / "empty").mkdir()
    assert cli.main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "e.html")]) == 1
    assert "no runs fit for comparison" in (tmp_path / "e.html").read_text()


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="headless Chromium not installed (Debian: apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(built, tmp_path):
    import matplotlib.image

    out, _, _ = built
    shot = tmp_path / "shot.png"
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1300,3000", out.as_uri()]
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=90, check=False)
    assert shot.exists(), "chromium wrote no screenshot"
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (3000, 1300)
    rgb = (pixels.reshape(-1, 3) * 255).astype(np.uint32)
    colours = np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2])
    assert len(colours) > 200  # text, tables and plots, not a blank or error page
    plot_band = pixels[1500:3000]
    assert plot_band.std() > 0.05
