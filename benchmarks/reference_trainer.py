"""The reference: fine-tuning and distillation the way the project's seeds do it, with Hugging Face's Trainer.

Random batches padded to their longest sentence (DataCollatorWithPadding), and a compute_loss that runs
the teacher at every step. Same loss, optimizer (AdamW), schedule (linear, 10% warmup), weight decay,
clipping and hyperparameters as this project's scripts. It shares no code with the project, so the
benchmark compares two independent implementations. Run by distill_benchmark.py, one stage per process:

    python benchmarks/reference_trainer.py --stage teacher --model MINILM --save_dir W/teacher --output t.json
    python benchmarks/reference_trainer.py --stage distill --model W/minilm-l3 --teacher W/teacher ...
    python benchmarks/reference_trainer.py --stage evaluate --model W/student --output e.json
"""

import argparse
import csv
import json
import os
import resource
import time

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)
from transformers.utils import logging as hf_logging

LABELS = {0: "negative", 1: "positive"}


def read_tsv(path, rows_file=None):
    """A GLUE TSV's sentences and labels; with rows_file (a JSON list of 0-based row numbers), only
    those rows: the driver writes the rows the project's --max_train_samples draws, so both sides train
    on the same sentences."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    if rows_file:
        with open(rows_file, encoding="utf-8") as f:
            rows = [rows[i] for i in json.load(f)]
    return {"sentence": [r[0] for r in rows], "label": [int(r[1]) for r in rows]}


class DistillationTrainer(Trainer):
    """The seeds' distillation: the teacher runs on every training batch."""

    def __init__(self, *args, teacher=None, temperature=2.0, alpha=0.5, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher.to(self.args.device).eval()
        self.temperature, self.alpha = temperature, alpha

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        with torch.no_grad():
            teacher_logits = self.teacher(**inputs).logits
        t = self.temperature
        kd = F.kl_div(F.log_softmax(outputs.logits / t, dim=-1), F.softmax(teacher_logits / t, dim=-1),
                      reduction="batchmean") * t * t
        ce = F.cross_entropy(outputs.logits, labels)
        loss = self.alpha * kd + (1 - self.alpha) * ce
        return (loss, outputs) if return_outputs else loss


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--stage", choices=("teacher", "distill", "evaluate"), required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--teacher")
    p.add_argument("--data_path", default="./data/sst2")
    p.add_argument("--save_dir")
    p.add_argument("--output", required=True)
    p.add_argument("--train_rows", default=None, help="JSON file listing the training rows to use (default: all)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--eval_batch_size", type=int, default=64)
    p.add_argument("--learning_rate", type=float, default=1e-4)
    p.add_argument("--max_length", type=int, default=128)
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--bf16", action="store_true",
                   help="TrainingArguments(bf16=True): bf16 autocast, the Trainer's fastest setting on a CPU with native bf16")
    args = p.parse_args()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    start = time.perf_counter()

    tokenizer = AutoTokenizer.from_pretrained(args.model, trust_remote_code=False)

    def tokenize(data):
        return Dataset.from_dict(data).map(
            lambda b: tokenizer(b["sentence"], truncation=True, max_length=args.max_length), batched=True,
            remove_columns=["sentence"])

    dev = tokenize(read_tsv(os.path.join(args.data_path, "dev.tsv")))
    training_args = TrainingArguments(
        output_dir=os.path.join(args.save_dir or "/tmp", "trainer-out"), per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size, learning_rate=args.learning_rate,
        num_train_epochs=args.epochs, warmup_steps=0.1, weight_decay=0.01, max_grad_norm=1.0,
        lr_scheduler_type="linear", seed=args.seed, save_strategy="no", eval_strategy="no",
        logging_strategy="no", report_to="none", disable_tqdm=True, dataloader_num_workers=0, bf16=args.bf16,
        use_cpu=not torch.cuda.is_available(),  # the Trainer refuses bf16 without a GPU unless told it runs on CPU
    )
    collator = DataCollatorWithPadding(tokenizer)
    result = {"stage": args.stage, "precision": "bf16" if args.bf16 else "no"}
    if args.stage == "evaluate":
        model = AutoModelForSequenceClassification.from_pretrained(args.model, trust_remote_code=False)
        trainer = Trainer(model=model, args=training_args, data_collator=collator, processing_class=tokenizer)
    else:
        train = tokenize(read_tsv(os.path.join(args.data_path, "train.tsv"), args.train_rows))
        model = AutoModelForSequenceClassification.from_pretrained(
            args.model, num_labels=2, id2label=LABELS, label2id={v: k for k, v in LABELS.items()},
            trust_remote_code=False)
        common = dict(model=model, args=training_args, train_dataset=train, data_collator=collator,
                      processing_class=tokenizer)
        if args.stage == "teacher":
            trainer = Trainer(**common)
        else:
            teacher = AutoModelForSequenceClassification.from_pretrained(args.teacher, trust_remote_code=False)
            trainer = DistillationTrainer(**common, teacher=teacher, temperature=args.temperature, alpha=args.alpha)
        # Padding the reference's batches carry: the same random sampler, read once without the model.
        real = padded = 0
        for batch in trainer.get_train_dataloader():
            real, padded = real + int(batch["attention_mask"].sum()), padded + batch["attention_mask"].numel()
        train_start = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - train_start
        result.update(train_seconds=train_seconds, epoch_seconds=train_seconds / args.epochs,
                      train_samples_per_second=len(train) * args.epochs / train_seconds,
                      padding_efficiency=real / padded)
        if args.save_dir:
            trainer.save_model(args.save_dir)
    predictions = trainer.predict(dev)
    result["accuracy"] = float(np.mean(predictions.predictions.argmax(-1) == np.asarray(dev["label"])))
    result["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["process_seconds"] = time.perf_counter() - start
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
