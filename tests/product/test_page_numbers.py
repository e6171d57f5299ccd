"""The numbers on the results, performance and benchmark pages are the ones the benchmark commands wrote: each
generated page is rebuilt here from its JSON file and compared whole, and each number quoted in prose is
computed here from that JSON, so a page that drifts from what was measured fails. The README's and the
results page's recipe and levers numbers are checked in test_results_numbers.py."""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import REPO, block, section

BENCH = REPO / "benchmarks"
RESULTS = BENCH / "results"
PAGES = [REPO / "README.md", *(REPO / "docs" / name for name in ("results.md", "performance.md", "benchmark.md",
                                                                  "deploy-onnx.md")),
         *sorted(BENCH.glob("*.md"))]


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def flat(path: Path) -> str:
    """The page with its line breaks and runs of spaces made single spaces, so a claim may wrap."""
    return " ".join(path.read_text(encoding="utf-8").split())


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        yield
    finally:
        sys.path.remove(str(BENCH))


# The generated pages: each is its generator's rendering of its JSON file.

def test_the_benchmark_results_page_is_its_json(bench, tmp_path, monkeypatch):
    import distill_benchmark

    monkeypatch.setattr(distill_benchmark, "_chart", lambda r, path: None)
    distill_benchmark.write_report(load(BENCH / "results.json"), tmp_path)
    assert (tmp_path / "results.md").read_text() == (BENCH / "results.md").read_text()


def test_the_benchmark_page_shows_that_same_report():
    assert block(REPO / "docs" / "benchmark.md", "benchmark-results") == (BENCH / "results.md").read_text()


def test_the_methods_page_is_its_json(bench, tmp_path):
    import methods

    methods.write_table(load(BENCH / "methods.json"), tmp_path)
    assert (tmp_path / "methods.md").read_text() == (BENCH / "methods.md").read_text()


def test_the_scale_page_is_its_json(bench, tmp_path, monkeypatch, capsys):
    """scale.py's report reads each model's shape from its folder; the folders are gone, so each run's shape
    is given here: MiniLM-L6 (384 wide, 1,536 feed-forward), 6 layers for a teacher, 3 for a student."""
    import scale
    import transformers

    def config(folder, **_):
        return SimpleNamespace(hidden_size=384, intermediate_size=1536,
                               num_hidden_layers=6 if Path(folder).name == "teacher" else 3)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", config)
    scale.write_report(load(BENCH / "scale.json"), tmp_path)
    assert (tmp_path / "scale.md").read_text() == (BENCH / "scale.md").read_text()


def test_the_sweep_page_is_its_json(bench):
    import sweep_sst2_small

    assert sweep_sst2_small.report(load(BENCH / "sweep_sst2_small.json")) in (BENCH / "sweep_sst2_small.md").read_text()


def seed_rows(sweep: dict) -> list[str]:
    rows = [f"| {seed} | {100 * r['best']:.2f} | {100 * r['hand_picked']:.2f} | {100 * (r['best'] - r['hand_picked']):+.2f} |"
            for seed, r in sweep["seeds"].items()]
    best = statistics.mean(r["best"] for r in sweep["seeds"].values())
    hand = statistics.mean(r["hand_picked"] for r in sweep["seeds"].values())
    return rows + [f"| mean | {100 * best:.2f} | {100 * hand:.2f} | {100 * (best - hand):+.2f} |"]


def test_the_sweep_numbers_on_the_results_page_and_the_readme_are_its_json():
    sweep = load(BENCH / "sweep_sst2_small.json")
    page = (REPO / "docs" / "results.md").read_text()
    for row in seed_rows(sweep):
        assert row in page
    best = statistics.mean(r["best"] for r in sweep["seeds"].values())
    hand = statistics.mean(r["hand_picked"] for r in sweep["seeds"].values())
    assert best < hand and "do not beat the hand-picked ones" in page
    readme = flat(REPO / "README.md")
    assert (f"A {sweep['trials']}-trial `sweep.py` over the sst2-small student's settings did not beat the recipe's "
            f"hand-picked ones ({100 * best:.2f} against {100 * hand:.2f} dev over three seeds, on an "
            f"{sweep['train_samples']:,}-sentence draw, fp32 on a 2-core AMD EPYC") in readme
    assert f"8,000 training sentences for 1 epoch, with 800 of them" in flat(REPO / "docs" / "results.md")
    assert sweep["train_samples"] == 8000


# Prose computed from the JSON files.

def test_the_benchmark_page_prose_is_its_json():
    r = load(BENCH / "results.json")
    ours, ref = r["project"]["distill"], r["reference"]["distill"]
    text = section(REPO / "docs" / "benchmark.md", "What this shows")
    spread = [100 * (max(side["accuracies"]) - min(side["accuracies"])) for side in (ours, ref)]
    assert f"A distillation epoch is **{r['distill_epoch_speedup']:.1f}x** faster than the reference's" in text
    assert f"over five seeds the students average {100 * ours['accuracy']:.2f}% (this project) and " \
           f"{100 * ref['accuracy']:.2f}% (reference)" in text and len(r["seeds"]) == 5
    assert f"({spread[0]:.2f} points for this project's, {spread[1]:.2f} for the reference's)" in text
    assert f"student ({r['distill_vs_finetune']:.2f}x;" in text and r["distill_vs_finetune"] <= 1
    assert f"paid for once, {ours['cache_seconds']:.1f} s before the first epoch" in text
    pipe, ref_pipe = r["project"]["pipeline"], r["reference"]["pipeline"]
    assert (f"The whole pipeline is **{r['pipeline_speedup']:.2f}x** faster: "
            f"{ref_pipe['teacher'] / pipe['teacher']:.1f}x for the teacher, "
            f"{ref_pipe['distill'] / pipe['distill']:.1f}x for the distillation, and "
            f"{ref_pipe['evaluate'] / pipe['evaluate']:.1f}x for evaluation") in text
    assert "fp32" in r["machine"] and "2 cores" in r["machine"]


def test_the_performance_page_numbers_are_the_benchmarks_json():
    page = flat(REPO / "docs" / "performance.md")
    r = load(BENCH / "results.json")
    assert (f"{r['project']['distill']['padding_efficiency']:.2f} for this project's grouped batches at batch "
            f"{r['batch_size']} against {r['reference']['distill']['padding_efficiency']:.2f} for the reference's "
            f"random batches") in page

    s = load(BENCH / "scale.json")
    seeds, runs = s["seeds"], s["runs"]

    def acc(name):
        return [100 * runs[f"{name}-{seed}"]["validation"]["accuracy"] for seed in seeds]

    def cell(values):
        return f"{statistics.mean(values):.2f} ({', '.join(f'{v:.2f}' for v in values)})"

    def rate(name):
        return statistics.median(runs[f"{name}-{seed}"]["history"][0]["train_samples_per_second"] for seed in seeds)

    scale_md = (BENCH / "scale.md").read_text()
    share = {name: re.search(rf"\| {re.escape(label)} \| [^|]+ \| \d+ \| \d+ GFLOP/s, (\d+%) \|", scale_md).group(1)
             for name, label in (("student-no", "trains the word embeddings (default)"),
                                 ("student-freeze", "`--freeze_embeddings`"))}
    assert (f"| trains the word embeddings (default) | {cell(acc('student-no'))} | {rate('student-no'):.0f} | "
            f"{share['student-no']} |") in page
    assert (f"| `--freeze_embeddings` | {cell(acc('student-freeze'))} | {rate('student-freeze'):.0f} | "
            f"{share['student-freeze']} |") in page
    assert f"Freezing makes student training {rate('student-freeze') / rate('student-no'):.2f}x faster" in page
    cost = statistics.mean(acc("student-no")) - statistics.mean(acc("student-freeze"))
    assert "for a quarter of a point of dev accuracy" in page and 0.2 <= cost <= 0.3
    assert "lower on every seed" in page and all(f < n for f, n in zip(acc("student-freeze"), acc("student-no")))
    teacher = re.search(r"Teacher training in fp32 reaches \d+ GFLOP/s, (\d+%)", scale_md).group(1)
    assert f"On that Intel Xeon, teacher training in fp32 reaches {teacher} of the fp32 matmul peak" in page
    assert (f"a 1024 x 1024 bf16 matmul runs at {s['peak_gflops']['bf16']:.0f} GFLOP/s against "
            f"{s['peak_gflops']['no']:.0f} in fp32") in page
    assert "Intel(R) Xeon(R)" in s["machine"] and s["auto"]["mode"] == "no"
    assert (f"| `no` (what `auto` picks there) | {cell(acc('teacher-no'))} | {cell(acc('student-no'))} |") in page
    assert (f"| `bf16`, emulated (what `auto` picks on a CPU with `avx512_bf16`) | {cell(acc('teacher-bf16'))} | "
            f"{cell(acc('student-bf16'))} |") in page
    gap = max(abs(statistics.mean(acc(f"{role}-no")) - statistics.mean(acc(f"{role}-bf16"))) for role in ("teacher", "student"))
    assert f"The two precisions agree within {gap:.2f} points on average" in page
    agreement = s["evaluate_agreement"]
    assert all(a["differ"] == 0 for a in agreement.values())
    assert "the same prediction in emulated bf16 as in fp32 for all 872 dev sentences, teacher and student alike" in page


def test_the_step_profile_table_is_profile_steps_json():
    doc = load(RESULTS / "profile-step" / "fp32.json")
    page = (REPO / "docs" / "performance.md").read_text()
    assert doc["precision"] == "no"
    assert (f"| fp32, batch {doc['batch_size']} x {doc['seq_len']} tokens (matmul peak measured in the same run: "
            f"{doc['matmul_peak_gflops']:.0f} GFLOP/s) |") in page
    for row in doc["rows"]:
        label = row["model"].split(" (")[0] + f" ({row['layers']} layers)" + (", `--freeze_embeddings`" if row["freeze_embeddings"] else "")
        others = ", ".join(f"`{name.removeprefix('aten::')}` {share:.0%}" for name, share in row["others"][:3])
        assert (f"| {label} | {row['step_ms']:.0f} ms | {row['samples_per_s']:.0f} | {row['matmul_share']:.0%} | "
                f"{row['gflops'] / doc['matmul_peak_gflops']:.0%} | {others} |") in page, label


def test_the_native_bf16_speeds_are_their_json():
    fp32, bf16 = (load(RESULTS / "profile-step" / f"{name}.json") for name in ("fp32", "bf16"))
    assert (fp32["precision"], bf16["precision"]) == ("no", "bf16") and bf16["cpu_bf16_flags"]
    step = {(doc["precision"], row["layers"]): row["step_ms"] for doc in (fp32, bf16) for row in doc["rows"]
            if not row["freeze_embeddings"]}
    onnx = load(RESULTS / "onnx-speed" / "onnx_speed.json")
    speed = onnx["rows"]["PyTorch bf16 autocast"]["examples_per_second"] / onnx["rows"]["PyTorch fp32"]["examples_per_second"]
    assert onnx["cpu_bf16_flags"] and "AMD EPYC" in onnx["machine"] and "AMD EPYC" in bf16["machine"]
    assert (f"a 1024 x 1024 bf16 matmul ran at {bf16['matmul_peak_gflops']:.0f} GFLOP/s against "
            f"{fp32['matmul_peak_gflops']:.0f} in fp32, and a training step under bf16 autocast took "
            f"{step[('bf16', 3)]:.0f} ms against {step[('no', 3)]:.0f} ms for the student and {step[('bf16', 6)]:.0f} ms "
            f"against {step[('no', 6)]:.0f} ms for the teacher; at batch {onnx['batch_size']} the student's inference "
            f"under bf16 autocast ran at {speed:.2f}x its fp32 speed") in flat(REPO / "docs" / "performance.md")


def test_the_results_page_teacher_pass_prose_is_its_json():
    few = RESULTS / "recipe-sst2"
    rows = {r["setting"]: r["sentences_per_s"] for r in load(few / "teacher_pass.json")["rows"]}
    largest = max(r["max_logit_difference"] for r in load(few / "teacher_pass.json")["rows"])
    metrics = load(few / "teacher-metrics.json")
    text = section(REPO / "docs" / "results.md", "## The base-size teacher at full scale")
    b64, b128, w64 = rows["bf16 (auto), batch 64"], rows["bf16 (auto), batch 128"], rows["bf16 weights, batch 64"]
    assert f"Batches of 64 are {b64 / b128 - 1:.0%} faster than 128 here" in text
    assert f"Casting the weights to bf16 gains {w64 / b64 - 1:.0%} more and moves the logits by up to {largest:.2f}" in text
    train = metrics["history"][-1]["train_samples_per_second"]
    assert (f"At {b64:.0f} sentences/s the pass over the {metrics['train_examples']:,} sentences takes about "
            f"{metrics['train_examples'] / b64 / 60:.0f} minutes, {b64 / train:.1f} times the teacher's training speed "
            f"per sentence in its second epoch") in text
    assert f"({metrics['history'][-1]['train_seconds']:,.0f} s, {metrics['history'][-1]['train_seconds'] / 60:.0f} minutes)" in text


def levers() -> list[dict]:
    return [load(path) for path in sorted((RESULTS / "recipe-sst2").glob("levers*.json"))]


def test_the_results_page_levers_prose_is_their_json():
    text = section(REPO / "docs" / "results.md", "## The base-size teacher at full scale")
    minilm = [run for run in levers() if "teacher_layers" not in run["student_flags"]]
    three = [r for run in minilm if run["epochs"] == 1 and "--student_layers" in run["student_flags"] for r in run["rows"]]
    one = next(r for r in three if r["lever"] == "kd-aug1-replace" and not r["teacher_logits_reused"]
               and r["train_examples"] == 134698)
    four = next(r for r in three if r["lever"] == "kd-aug4-replace")
    seed42 = next(run for run in minilm if run["seed"] == 42 and run["epochs"] == 1
                  and "--student_layers" in run["student_flags"] and any(r["lever"] == "kd-aug4-replace" for r in run["rows"]))
    one42 = next(r for r in seed42["rows"] if r["lever"] == "kd-aug1-replace")
    assert (f"Four replaced copies per sentence ({four['train_examples']:,} examples, "
            f"{four['train_seconds'] / one42['train_seconds']:.1f} times one copy's training time and a "
            f"{four['teacher_logits_seconds'] / 60:.0f}-minute teacher pass) reach {100 * four['dev_accuracy']:.2f}, "
            f"below one copy's {100 * one42['dev_accuracy']:.2f} at the same seed") in text
    passes = [r["teacher_logits_seconds"] for r in three if r["lever"] == "kd-aug1-replace" and not r["teacher_logits_reused"]]
    median = statistics.median(passes)
    assert (f"The teacher's pass over one seed's copies took a median {median:.0f} s "
            f"({one['train_examples'] // 2 / median:.0f} sentences/s)") in text
    steps = one["train_examples"] // 32 + (one["train_examples"] % 32 > 0)
    assert f"twice its twin's optimizer steps ({steps:,} against {-(-one['train_examples'] // 2 // 32):,})" in text


def test_the_goals_table_is_the_levers_means():
    page = (REPO / "docs" / "results.md").read_text()
    by: dict[tuple[bool, str], list[float]] = {}
    for run in levers():
        if run["epochs"] == 1 and "teacher_layers" not in run["student_flags"]:  # MiniLM-L6 and its first 3 layers
            for r in run["rows"]:
                by.setdefault(("--student_layers" in run["student_flags"], r["lever"]), []).append(r["dev_accuracy"])

    def mean(small, lever):
        return 100 * statistics.fmean(by[(small, lever)])

    for small, goal in ((False, "| MiniLM-L6 student >= 92.0 and >= its twin + 1.0 | "),
                        (True, "| 3-layer student >= 91.0 and >= its twin + 1.5 | ")):
        kd, twin = mean(small, "kd-aug1-replace"), mean(small, "twin")
        assert f"{goal}{kd:.2f}, twin + {kd - twin:.2f}, 3 seeds, one epoch" in page
    teacher = 100 * load(RESULTS / "recipe-sst2" / "teacher-metrics.json")["validation"]["accuracy"]
    assert f"| teacher >= 94.0 | **{teacher:.2f}** (met) |" in page


def test_the_demo_student_is_three_quarters_of_the_teachers_parameters():
    teacher, student, twin = load(RESULTS / "demo" / "demo.json")["rows"]
    page = section(REPO / "docs" / "results.md", "## The demo")
    assert "the parameter count drops by a quarter" in page and abs(1 - student["parameters"] / teacher["parameters"] - 0.25) < 0.03
    assert f"6 layers, {teacher['parameters'] / 1e6:.1f}M parameters" in page and f"({student['parameters'] / 1e6:.1f}M parameters)" in page
    assert student["parameters"] == twin["parameters"]


def test_the_onnx_speed_table_is_its_json(bench):
    """benchmarks/onnx_speed.py --report_only's rendering of the kept run; the vs-fp32 column is computed from
    the rows' own speeds."""
    import onnx_speed

    doc = load(RESULTS / "onnx-speed" / "onnx_speed.json")
    page = block(BENCH / "onnx_speed_notes.md", "onnx-speed")
    assert page == onnx_speed.notes_block(doc)
    base = doc["rows"]["PyTorch fp32"]["examples_per_second"]
    for name, r in doc["rows"].items():
        assert f"| {name} |" in page and f"| {r['examples_per_second'] / base:.2f}x |" in page
    int8, fp32 = doc["rows"]["ONNX Runtime int8"], doc["rows"]["PyTorch fp32"]
    assert "meets the accuracy goal and neither speed goal" in flat(BENCH / "onnx_speed_notes.md")
    assert fp32["accuracy"] - int8["accuracy"] <= 0.005 and int8["examples_per_second"] < 4 * base
    assert int8["latency_p50_ms"] > 0.5


def test_the_deploy_page_shows_the_same_onnx_run(bench):
    """docs/deploy-onnx.md shows the kept ONNX run's table, and each ratio in its prose is computed from it."""
    import onnx_speed

    doc = load(RESULTS / "onnx-speed" / "onnx_speed.json")
    page = REPO / "docs" / "deploy-onnx.md"
    assert block(page, "onnx-speed") == onnx_speed.notes_block(doc)
    r = doc["rows"]
    fp32, int8, ort, ao = (r[k] for k in ("PyTorch fp32", "ONNX Runtime int8", "ONNX Runtime fp32",
                                          "PyTorch dynamic int8 (torch.ao, removed)"))
    text = flat(page)
    assert f"within {100 * (fp32['accuracy'] - int8['accuracy']):.2f} points" in text
    assert f"latency {fp32['latency_p50_ms'] / int8['latency_p50_ms']:.1f}x against PyTorch fp32" in text
    assert f"({ort['latency_p50_ms'] / int8['latency_p50_ms']:.1f}x against ONNX Runtime fp32)" in text
    assert f"weights {fp32['size_on_disk_mb'] / int8['size_on_disk_mb']:.1f}x" in text
    assert f"runs {int8['examples_per_second'] / fp32['examples_per_second']:.2f}x PyTorch fp32's" in text
    assert f"lost {100 * (fp32['accuracy'] - ao['accuracy']):.2f} points" in text
    assert f"latency is {ao['latency_p50_ms'] / int8['latency_p50_ms']:.1f}x ONNX Runtime int8's, at " \
           f"{100 * ao['examples_per_second'] / int8['examples_per_second']:.0f}%" in text

def test_the_methods_page_copies_the_methods_benchmark():
    """docs/methods.md's table and machine line are benchmarks/methods.md's, which is rebuilt from methods.json."""
    bench_page = (BENCH / "methods.md").read_text(encoding="utf-8")
    table = [line for line in bench_page.splitlines() if line.startswith(("|", "Machine:"))]
    docs_page = (REPO / "docs" / "methods.md").read_text(encoding="utf-8")
    after = [line for line in docs_page[docs_page.index(table[0]):].splitlines() if line.strip()]
    assert after[:len(table)] == table

# Commands on the pages run as written.

COMMAND = re.compile(r"python (benchmarks/\w+\.py)((?: (?!#)[^`\n]*)?)")


def page_commands() -> list[tuple[str, str, str]]:
    """(page, script, arguments) for every `python benchmarks/X.py ...` in backquotes or a code block."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        spans = [" ".join(m.split()) for m in re.findall(r"`([^`]+)`", text.replace("```", "\n"))]
        spans += [line.split("  #")[0] for block in re.findall(r"```\n(.*?)```", text, re.S) for line in block.splitlines()]
        for span in spans:
            for m in COMMAND.finditer(span):
                found.append((page.relative_to(REPO).as_posix(), m.group(1), m.group(2).strip()))
    return sorted(set(found))


COMMANDS = page_commands()


def test_the_pages_quote_the_benchmark_commands():
    scripts = {script for _, script, _ in COMMANDS}
    assert {"benchmarks/levers.py", "benchmarks/sweep_sst2_small.py", "benchmarks/scale.py",
            "benchmarks/profile_step.py", "benchmarks/onnx_speed.py"} <= scripts


class Parsed(Exception):
    pass


@pytest.mark.parametrize("page, script, arguments", COMMANDS, ids=[f"{p}:{s}:{a}" for p, s, a in COMMANDS])
def test_each_benchmark_command_on_the_pages_parses_as_written(page, script, arguments, monkeypatch, capsys):
    """The script's own parser takes the command's arguments (placeholders such as OUT stand for paths), and
    the script stops there: nothing runs."""
    import argparse
    import runpy
    import shlex

    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        original(self, args, namespace)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", [str(REPO / script), *shlex.split(arguments)])
    monkeypatch.syspath_prepend(str(BENCH))
    with pytest.raises(Parsed):
        runpy.run_path(str(REPO / script), run_name="__main__")


def test_every_two_decimal_number_in_the_levers_prose_is_in_its_tables():
    """The sentences around the base-size teacher's tables quote accuracies and differences from those
    tables (which test_results_numbers.py checks against the levers runs), or the teacher's own metrics."""
    text = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    start = text.index("## The base-size teacher at full scale")
    part = text[start:text.index("\n## ", start + 1)]
    tables = " ".join(line for line in part.splitlines() if line.startswith("|"))
    prose = " ".join(line for line in part.splitlines() if not line.startswith("|"))
    metrics = load(RESULTS / "recipe-sst2" / "teacher-metrics.json")
    teacher = {f"{100 * e['eval']['accuracy']:.2f}" for e in metrics["evaluations"]} | {
        f"{100 * e['eval']['accuracy']:.2f}" for e in metrics["history"]}
    numbers = set(re.findall(r"(?<![\d.])\d+\.\d\d(?![\d])", prose))
    in_tables = set(re.findall(r"(?<![\d.])\d+\.\d\d(?![\d])", tables))
    assert numbers - in_tables - teacher - {"0.14"} == set()  # 0.14: the largest logit difference, checked above


def test_the_mpnet_teacher_size_is_its_metrics():
    size = load(RESULTS / "recipe-sst2" / "teacher-metrics.json")["num_parameters"]
    page = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    assert page.count(f"{size / 1e6:.1f}M") == 2
