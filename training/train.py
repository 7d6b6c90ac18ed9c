"""Fine-tune a DistilBERT review classifier with the Hugging Face Trainer.

    python -m training.train                      # the multi-domain mix, MiniLM-as-DistilBERT, CPU or GPU
    python -m training.train --data imdb          # IMDB alone (how v1 was trained)
    python -m training.train --data reviews.csv   # a user's CSV (Sephora's schema works as is)
    torchrun --nproc-per-node 4 -m training.train # several GPUs, same entry point

The Trainer gives progress bars, periodic validation, best-checkpoint selection, resume
after interruption (rerun the same command), fixed seeds, bf16/fp16 and gradient
accumulation; this module only prepares data and writes the released checkpoint.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from review_sentiment.core.calibration import MAX_TEMPERATURE, MIN_TEMPERATURE
from review_sentiment.core.encoding import pad_batch, token_ids
from review_sentiment.core.layout import notices
from review_sentiment.core.machine import cpu_has_bf16
from training import data as datasets
from training import mix
from training.base_model import DEFAULT_BASE_MODEL, load_base
from training.distill import NO_LABEL, DistillationTrainer, soft_label
from training.report import describe, to_markdown


class EncodedSet(torch.utils.data.Dataset):
    """Pre-tokenized examples (head+tail truncated, as at serving time), each with a hard label
    (NO_LABEL where none) and the teacher's soft label (NaN where none)."""

    def __init__(self, ids: list[list[int]], labels: list[int], soft: list[float] | None = None):
        self.ids, self.labels = ids, labels
        self.soft = soft if soft is not None else [math.nan] * len(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "labels": self.labels[i], "soft": self.soft[i]}


def make_collator(pad_id: int):
    def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
        batch = pad_batch([e["input_ids"] for e in examples], pad_id)
        batch["labels"] = torch.tensor([e["labels"] for e in examples], dtype=torch.long)
        batch["soft"] = torch.tensor([e["soft"] for e in examples], dtype=torch.float)
        return batch

    return collate


def accuracy(eval_pred) -> dict[str, float]:
    logits, labels = eval_pred
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


def load_training_set(args) -> datasets.LabelledSet:
    """One set (IMDB or a CSV), deduplicated and optionally balanced, before its split."""
    if args.data == "imdb":
        data = datasets.load_imdb()
    else:
        data = datasets.load_csv(args.data, args.text_column, args.label_column, args.positive, args.negative)
    data = datasets.deduplicate(data)
    return datasets.balance(data, args.seed) if args.balance else data


def data_spec(args: argparse.Namespace) -> dict:
    """What `training.evaluate` needs to rebuild the held-out splits: stored in training_info.json."""
    spec: dict = {"kind": args.data if args.data in ("mix", "imdb") else "csv", "seed": args.seed}
    if args.data == "mix":
        spec["sources"] = list(args.sources)
    else:
        spec["balance"] = args.balance
    if spec["kind"] == "csv":
        spec |= {
            "path": str(args.data),
            "text_column": args.text_column,
            "label_column": args.label_column,
            "positive": args.positive,
            "negative": args.negative,
        }
    return spec


def training_data(args: argparse.Namespace) -> tuple[datasets.LabelledSet, datasets.LabelledSet, list, list[dict]]:
    """(train, validation, sets for the data report, loading reports)."""
    if args.data == "mix":
        m = mix.build_mix(args.sources, args.seed, val_cap=args.val_limit)
        train, val = m.train, m.validation
        sections = [s for p in m.parts.values() for s in p.values()]
        sections += [s for name, s in m.tests.items() if name in mix.HELD_OUT]
        return _limited(train, args.train_limit), val, sections, m.loads
    splits = datasets.split(load_training_set(args), args.seed)
    train = _limited(splits["train"], args.train_limit)
    val = splits["validation"].subset(range(min(args.val_limit, len(splits["validation"]))), "validation")
    return train, val, [train, splits["validation"], splits["test"]], [train.report.to_dict()]


def with_teacher(args: argparse.Namespace, train: datasets.LabelledSet) -> tuple[datasets.LabelledSet, list[float]]:
    """The training set plus, when distilling, the teacher's unlabelled pool (hard label
    NO_LABEL); and each example's soft label (NaN where the teacher has none)."""
    if args.teacher_labels is None:
        return train, [math.nan] * len(train)
    from training.teacher.labels import TeacherLabels
    from training.teacher.run import unlabelled_texts

    teacher = TeacherLabels(args.teacher_labels)
    m = mix.build_mix(args.sources, args.seed, val_cap=args.val_limit)
    pool = [t for group in unlabelled_texts(m, args.seed, args.pool_size) for t in group]
    texts = train.texts + pool
    labels = train.labels + [NO_LABEL] * len(pool)
    soft = [soft_label(teacher.probability(t)) for t in texts]
    covered = sum(not math.isnan(p) for p in soft)
    print(f"distillation: {len(train)} labelled + {len(pool)} unlabelled texts, {covered} with a teacher label")
    return datasets.LabelledSet("mix-train+pool", texts, labels, train.report), soft


def _limited(data: datasets.LabelledSet, limit: int) -> datasets.LabelledSet:
    """The first `limit` examples of a seeded sample (0: all): a smoke run keeps both classes."""
    return datasets.sample(data, limit or None, seed=0)


def temperature_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Temperature scaling (Guo et al., 2017): the T > 0 that minimises the NLL of
    softmax(logits / T), clamped to the range the core accepts. It changes confidences, never
    the predicted label."""
    logits, log_t = logits.detach().float(), torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def nll() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(nll)
    return round(min(max(float(log_t.detach().exp()), MIN_TEMPERATURE), MAX_TEMPERATURE), 4)


@torch.no_grad()
def fit_temperature(model: torch.nn.Module, encoded: EncodedSet, pad_id: int, batch_size: int = 64) -> float:
    """The calibration temperature of `model` on the validation examples `encoded` (fp32)."""
    model = model.float().eval()
    collate = make_collator(pad_id)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded.ids[i]))
    logits, labels = [], []
    for start in range(0, len(order), batch_size):
        batch = collate([encoded[i] for i in order[start : start + batch_size]])
        labels.append(batch.pop("labels"))
        batch.pop("soft")
        logits.append(model(**batch).logits.float())
    return temperature_from_logits(torch.cat(logits), torch.cat(labels))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="mix", help="'mix' (default: the multi-domain mix), 'imdb' or a CSV file")
    p.add_argument(
        "--sources", nargs="+", default=list(mix.DEFAULT_SOURCES), choices=list(mix.SOURCES), help="sources of the mix"
    )
    p.add_argument("--text-column", help="CSV text column (default: review_text, text or review)")
    p.add_argument("--label-column", help="CSV label column (default: is_recommended, label, sentiment or rating)")
    p.add_argument("--positive", nargs="+", help="label values meaning positive (default: 1, positive, true, ...)")
    p.add_argument("--negative", nargs="+", help="label values meaning negative (default: 0, negative, false, ...)")
    p.add_argument("--balance", action="store_true", help="undersample the majority class")
    p.add_argument("--base-model", default=DEFAULT_BASE_MODEL, help="'minilm' (offline default), a Hub id or a folder")
    p.add_argument("--output-dir", default="runs/sentiment", help="checkpoints, logs and the final model")
    p.add_argument("--max-length", type=int, default=128, help="tokens per review (head+tail truncation)")
    p.add_argument("--head-fraction", type=float, default=0.25)
    p.add_argument("--train-limit", type=int, default=0, help="use the first N training reviews (0: all)")
    p.add_argument(
        "--val-limit", type=int, default=500, help="validation reviews scored during training (per source in the mix)"
    )
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--eval-steps", type=int, default=200)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    p.add_argument(
        "--teacher-labels",
        type=Path,
        help="distil from these soft labels (models/sentiment-accurate/teacher_labels.npz), with the unlabelled pool",
    )
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the teacher's soft labels where both exist")
    p.add_argument(
        "--pool-size", type=int, default=24_000, help="pool sentences the teacher labelled (with --teacher-labels)"
    )
    return p.parse_args(argv)


def training_arguments(args: argparse.Namespace, out: Path) -> TrainingArguments:
    cuda = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size * 2,
        gradient_accumulation_steps=args.grad_accum,
        learning_rate=args.lr,
        warmup_steps=0.06,  # a float below 1 is a ratio of the total steps
        weight_decay=0.01,
        eval_strategy="steps",
        eval_steps=args.eval_steps,
        save_strategy="steps",
        save_steps=args.eval_steps,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        logging_steps=max(1, args.eval_steps // 10),
        seed=args.seed,
        data_seed=args.seed,
        bf16=(cuda and torch.cuda.is_bf16_supported()) or (not cuda and cpu_has_bf16()),
        use_cpu=not cuda,
        report_to="none",
        # Batches of similar lengths: short sentences are not padded to a long review's length.
        train_sampling_strategy="group_by_length",
        dataloader_num_workers=0,
        # The batches carry "soft" (the teacher's labels), which the model's forward does not take:
        # the Trainer would drop it; DistillationTrainer.compute_loss takes it out instead.
        remove_unused_columns=False,
    )


def fine_tune(args: argparse.Namespace, model, tokenizer, train: EncodedSet, val: EncodedSet, out: Path):
    """(trainer after training, the checkpoint it resumed from or None)."""
    targs = training_arguments(args, out)
    trainer = DistillationTrainer(
        model=model,
        alpha=args.alpha,
        args=targs,
        train_dataset=train,
        eval_dataset=val,
        data_collator=make_collator(tokenizer.pad_token_id),
        compute_metrics=accuracy,
    )
    resumable = not args.no_resume and Path(targs.output_dir).is_dir()
    last = get_last_checkpoint(targs.output_dir) if resumable else None
    trainer.train(resume_from_checkpoint=last)
    return trainer, last


def save_model(trainer: Trainer, tokenizer, val: EncodedSet, final: Path) -> float:
    """The best model, calibrated (its temperature in config.json) and stored in fp16; returns T."""
    temperature = fit_temperature(trainer.model, val, tokenizer.pad_token_id)
    trainer.model.config.calibration_temperature = temperature  # applied by the serving core
    trainer.model.to(torch.float16).save_pretrained(final, safe_serialization=True)
    tokenizer.save_pretrained(final)
    return temperature


def training_record(args: argparse.Namespace, argv: list[str] | None, trainer: Trainer, run: dict) -> dict:
    """training_info.json: how to rebuild the run and its held-out sets, and what it did."""
    cuda = torch.cuda.is_available()
    return {
        "command": "python -m training.train " + " ".join(sys.argv[1:] if argv is None else argv),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},  # JSON: paths as text
        "data_spec": data_spec(args),
        "temperature": run["temperature"],
        "train_size": run["train_size"],
        "resumed_from": run["resumed_from"],
        "hardware": {
            "device": torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine(),
            "cpu_threads": torch.get_num_threads(),
            "bf16": trainer.args.bf16,
        },
        "seconds_this_run": run["seconds"],
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_validation_accuracy": trainer.state.best_metric,
        "log_history": trainer.state.log_history,
        "data": run["sections"],
        "load": run["loads"],
    }


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    set_seed(args.seed)
    out = Path(args.output_dir)
    started = time.time()

    model, tokenizer = load_base(args.base_model)
    train, val, report_sets, loads = training_data(args)

    def encode(s: datasets.LabelledSet, soft: list[float] | None = None) -> EncodedSet:
        return EncodedSet(token_ids(tokenizer, s.texts, args.max_length, args.head_fraction), s.labels, soft)

    val_set = encode(val)
    train, soft = with_teacher(args, train)
    trainer, last = fine_tune(args, model, tokenizer, encode(train, soft), val_set, out)
    final = out / "model"
    if trainer.is_world_process_zero():
        temperature = save_model(trainer, tokenizer, val_set, final)
        sections = [describe(s, tokenizer, args.max_length) for s in report_sets]
        (out / "data_report.md").write_text(to_markdown(sections, loads))
        run = {
            "temperature": temperature,
            "train_size": len(train),
            "resumed_from": last,
            "seconds": round(time.time() - started),
            "sections": sections,
            "loads": loads,
        }
        if args.teacher_labels is not None:  # a student of a teacher carries the teacher's licence notice
            for notice in notices(args.teacher_labels.parent):
                shutil.copy2(notice, final / notice.name)
        (final / "training_info.json").write_text(json.dumps(training_record(args, argv, trainer, run), indent=2))
        print(f"model written to {final}")
    return final


if __name__ == "__main__":
    main()
