"""The results page's numbers for `recipe.sh sst2` are the ones the commands wrote: each is checked
against its JSON file in benchmarks/results/recipe-sst2/, so the page cannot drift from what was measured."""

from __future__ import annotations

import json
import re

from helpers import REPO

RESULTS = REPO / "benchmarks" / "results" / "recipe-sst2"


def section() -> str:
    page = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    start = page.index("## The base-size teacher at full scale")
    return page[start:page.index("\n## ", start + 1)]


def rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("|---")]


def test_the_teacher_numbers_are_its_metrics():
    metrics = json.loads((RESULTS / "teacher-metrics.json").read_text())
    args = json.loads((RESULTS / "teacher-training_args.json").read_text())["args"]
    text = section()
    assert f"**{100 * metrics['validation']['accuracy']:.2f}** dev accuracy" in text
    assert f"kept from step {metrics['best_step']:,} of" in text
    assert f"Training took {metrics['total_train_seconds']:,.0f} s" in text
    for epoch in metrics["history"]:
        assert f"{epoch['train_samples_per_second']:.1f}" in text
    for flag in ("num_train_epochs", "learning_rate", "eval_steps", "seed"):
        value = re.search(rf"--{flag} (\S+)", text).group(1)
        assert float(value) == args[flag], flag


def test_the_teacher_pass_table_is_the_benchmarks_output():
    measured = json.loads((RESULTS / "teacher_pass.json").read_text())
    table = [r for r in rows(section()) if r[0].startswith(("bf16 autocast", "the weights"))]
    assert len(table) == len(measured["rows"])
    for row, want in zip(table, measured["rows"]):
        assert row[1] == f"{want['sentences_per_s']:.1f}"
        assert float(row[2]) == round(want["max_logit_difference"], 4)
        assert ("batch 64" in row[0]) == want["setting"].endswith("batch 64")


def student_name(header: dict) -> str:
    flags = header["student_flags"]
    if "teacher_layers" in flags:
        return f"{flags[flags.index('--student_layers') + 1]} of the teacher's layers"
    return f"first {flags[flags.index('--student_layers') + 1]} layers" if "--student_layers" in flags else "all 6 layers"


def levers_runs() -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(RESULTS.glob("levers*.json"))]


def test_the_levers_table_is_what_levers_py_measured():
    """Every row of every levers.json (benchmarks/levers.py's runs: one student, seed and epoch count
    each) is a row of the page's levers table, with its accuracy and its difference from the twin of the
    same run, computed here from the runs' own numbers; the table has no other rows."""
    table = [r for r in rows(section()) if len(r) == 9 and r[0] != "student"]
    measured = {}
    for run in levers_runs():
        twin = next(r["dev_accuracy"] for r in run["rows"] if r["lever"] == "twin")
        for r in run["rows"]:
            diff = "" if r["lever"] == "twin" else f"{100 * (r['dev_accuracy'] - twin):+.2f}"
            key = (student_name(run), str(run["seed"]), str(run["epochs"]), r["lever"])
            measured[key] = [f"{100 * r['dev_accuracy']:.2f}", diff, f"{r['train_examples']:,}"]
    got = {tuple(r[:4]): r[4:7] for r in table}
    assert got == measured


def test_the_teacher_layers_student_prose_is_its_run():
    """The sentence on MPNet's own 6 layers: its twin's accuracy, its lead over MiniLM-L6's twins' mean, its size."""
    text = " ".join(section().split())
    [run] = [r for r in levers_runs() if "teacher_layers" in r["student_flags"]]
    twin = next(r for r in run["rows"] if r["lever"] == "twin")
    minilm6 = [next(r for r in other["rows"] if r["lever"] == "twin")["dev_accuracy"] for other in levers_runs()
               if other["epochs"] == 1 and student_name(other) == "all 6 layers"]
    lead = 100 * (twin["dev_accuracy"] - sum(minilm6) / len(minilm6))
    assert f"reach {100 * twin['dev_accuracy']:.2f} trained on the gold labels alone: {lead:.1f} points above " \
           f"MiniLM-L6's twins" in text
    kd = next(r for r in run["rows"] if r["lever"] == "kd-aug1-replace")
    assert f"it reaches {100 * kd['dev_accuracy']:.2f}, {100 * (kd['dev_accuracy'] - twin['dev_accuracy']):+.2f} " \
           f"against its twin (seed 42)" in text
    assert f"--learning_rate {run['learning_rate']:.0e}".replace("e-0", "e-") in text and run["student_flags"] == [
        "--student_init", "teacher_layers", "--student_layers", "6"]


def test_the_seed_means_are_the_runs_means():
    """The means table averages, per student, the one-epoch runs holding both the twin and the recipe's
    lever; the gain the page states for the 3-layer student is that table's."""
    pairs: dict[str, list[tuple[int, float, float]]] = {}
    for run in levers_runs():
        accuracy = {r["lever"]: r["dev_accuracy"] for r in run["rows"]}
        if run["epochs"] == 1 and {"twin", "kd-aug1-replace"} <= accuracy.keys():
            pairs.setdefault(student_name(run), []).append(
                (run["seed"], accuracy["twin"], accuracy["kd-aug1-replace"]))
    table = {r[0]: r[1:] for r in rows(section()) if len(r) == 5 and r[0] != "student"}
    assert table.keys() == pairs.keys()
    for student, runs in pairs.items():
        twin = sum(t for _, t, _ in runs) / len(runs)
        kd = sum(k for _, _, k in runs) / len(runs)
        seeds = table[student][0].split(", ")
        assert sorted(seeds) == sorted(str(seed) for seed, _, _ in runs), student
        assert table[student][1:] == [f"{100 * twin:.2f}", f"{100 * kd:.2f}", f"{100 * (kd - twin):+.2f}"], student
    gain = table["first 3 layers"][3]
    assert f"adds **{gain[1:]} points**" in " ".join(section().split())


def test_the_readmes_own_classifier_numbers_are_the_levers_runs():
    """The README's "what to expect" under Distill your own classifier: the means over seeds, plain KD's
    seed-42 result, and the median times, each computed here from the levers runs."""
    import statistics

    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    start = readme.index("## Distill your own classifier")
    text = readme[start:readme.index("## ", start + 3)]
    by: dict[tuple[str, str], list[dict]] = {}
    for run in levers_runs():
        for r in run["rows"]:
            if run["epochs"] == 1:
                by.setdefault((student_name(run), r["lever"]), []).append({**r, "seed": run["seed"]})

    def mean(student: str, lever: str) -> str:
        return f"{100 * statistics.mean(r['dev_accuracy'] for r in by[(student, lever)]):.2f}"

    assert f"{mean('first 3 layers', 'kd-aug1-replace')} against {mean('first 3 layers', 'twin')} without" in text
    assert f"{mean('all 6 layers', 'kd-aug1-replace')} against {mean('all 6 layers', 'twin')}" in text
    plain = [r for r in by[("first 3 layers", "kd")] if r["seed"] == 42]
    twin = [r for r in by[("first 3 layers", "twin")] if r["seed"] == 42]
    assert f"added nothing ({100 * plain[0]['dev_accuracy']:.2f} both, seed 42)" in text
    assert plain[0]["dev_accuracy"] == twin[0]["dev_accuracy"]
    for student, words in (("first 3 layers", "for the 3-layer student"), ("all 6 layers", "for MiniLM-L6")):
        median = statistics.median(r["train_seconds"] for r in by[(student, "kd-aug1-replace")])
        assert f"{median:.0f} s {words}" in text
    passes = [r["teacher_logits_seconds"] for r in by[("first 3 layers", "kd-aug1-replace")]
              if not r["teacher_logits_reused"]]
    assert f"the teacher's pass over the copies {statistics.median(passes):.0f} s" in text


def test_the_few_labels_tables_are_generated_from_the_runs():
    """The few-labels tables on the results page are benchmarks/few_labels_curve.py's rendering of the
    recipe's JSON files; each seed's difference is its distilled minus its baseline accuracy."""
    import subprocess
    import sys

    check = subprocess.run([sys.executable, str(REPO / "benchmarks" / "few_labels_curve.py"), "--check"],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    page = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    for path in sorted((REPO / "benchmarks" / "results" / "recipe-sst2-few").glob("labeled-*.json")):
        labeled = int(path.stem.split("-")[1])
        for student in json.loads(path.read_text())["students"].values():
            for r in student["seeds"]:
                assert abs(r["difference"] - (r["distilled"] - r["twin"])) < 1e-12
                assert (f"| {labeled:,} | {r['seed']} | {100 * r['distilled']:.2f} | {100 * r['twin']:.2f} | "
                        f"{100 * (r['distilled'] - r['twin']):+.2f} |") in page


def test_the_few_labels_summary_is_the_runs():
    """The sentences under the few-labels tables: the 2,000-label means, the full-label twins' mean and the
    best lever's mean from the levers runs, and the teacher's share of right labels on the transfer text."""
    import statistics

    few = REPO / "benchmarks" / "results" / "recipe-sst2-few"
    rows = json.loads((few / "labeled-2000.json").read_text())["students"]["minilm3"]["seeds"]
    right = json.loads((few / "transfer-labels-2000.json").read_text())["teacher_accuracy"]
    page = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    text = " ".join(page[page.index("<!-- /few-labels -->"):page.index("## The base-size teacher at full scale")].split())
    distilled = statistics.fmean(r["distilled"] for r in rows)
    baseline = statistics.fmean(r["twin"] for r in rows)
    assert len(rows) == 3 and f"over three seeds, distillation adds **{100 * (distilled - baseline):+.2f} points**" in text
    assert f"reaches {100 * distilled:.2f} against {100 * baseline:.2f}" in text
    assert f"agrees with its teacher on {100 * statistics.fmean(r['agreement'] for r in rows):.1f}%" in text
    assert f"unlabeled text are {100 * right:.2f}% right" in text
    levers = {}
    for run in levers_runs():
        if run["epochs"] == 1 and student_name(run) == "first 3 layers":
            for r in run["rows"]:
                levers.setdefault(r["lever"], []).append(r["dev_accuracy"])
    twin = f"{100 * statistics.fmean(levers['twin']):.2f}"
    assert f"no teacher ({twin}," in text and f"reaches {twin} on all the gold labels" in text
    assert f"and {100 * statistics.fmean(levers['kd-aug1-replace']):.2f} distilled from the 94.27" in text
    assert (distilled >= 0.89) == ("the 89.0 is met" in text) and (distilled - baseline >= 0.06) == (
        "the baseline + 6 is met" in text)
    six = json.loads((few / "labeled-2000-minilm6.json").read_text())
    teacher = json.loads((few / "labeled-2000.json").read_text())["teacher"]
    assert {**six["teacher"], "seconds": None} == {**teacher, "seconds": None}  # the same teacher, trained earlier
    [run] = six["students"]["minilm6"]["seeds"]
    assert f"reaches {100 * run['distilled']:.2f} from the same teacher and text, against {100 * run['twin']:.2f} " \
           f"for its baseline on the 2,000 labels alone: {100 * (run['distilled'] - run['twin']):+.2f}" in text
    seed42 = next(r for r in rows if r["seed"] == run["seed"])
    assert f"Its baseline starts {100 * (run['twin'] - seed42['twin']):.2f} points above" in text
    five = json.loads((few / "labeled-500.json").read_text())
    assert f"with 500 (three seeds) the teacher still reaches {100 * five['teacher']['dev_accuracy']:.2f}" in text
    assert len(five["students"]["minilm3"]["seeds"]) == 3
    assert five["students"]["minilm3"]["mean"]["difference"] > distilled - baseline  # "gains more ... than with 2,000"
    eight = json.loads((few / "labeled-8000.json").read_text())
    eight_seeds = eight["students"]["minilm3"]["seeds"]
    eight_right = json.loads((few / "transfer-labels-8000.json").read_text())["teacher_accuracy"]
    eight_mean = eight["students"]["minilm3"]["mean"]
    assert len(eight_seeds) == 3 and f"with 8,000 (three seeds) the baseline rises to {100 * eight_mean['twin']:.2f}" in text
    assert f"distillation adds {100 * eight_mean['difference']:+.2f}" in text
    low, high = sorted(r["distilled"] - r["twin"] for r in eight_seeds)[::2]
    assert f"({100 * low:+.2f} to {100 * high:+.2f} by seed)" in text
    assert eight_mean["difference"] < distilled - baseline  # "more labels narrow it"
    assert f"unlabeled text are {100 * eight_right:.2f}% right; the distilled student ({100 * eight_mean['distilled']:.2f})" in text
    goal = (f"| few labels: student >= 89.0 and >= its baseline + 6 | {100 * distilled:.2f}, baseline + "
            f"{100 * (distilled - baseline):.2f}, 3 seeds, 2,000 labels")
    assert goal in page
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    teacher = json.loads((few / "labeled-2000.json").read_text())["teacher"]["dev_accuracy"]
    assert (f"2,000 labeled sentences, {100 * teacher:.2f} dev; the 3-layer student distilled on those and the other "
            f"65,349 as unlabeled text), distillation adds {100 * (distilled - baseline):.2f} points over the same "
            f"student trained on the 2,000 labels alone: {100 * distilled:.2f} against {100 * baseline:.2f}") in readme
