"""Fine-tune a DistilBERT review classifier with the Hugging Face Trainer.

    python -m training.train                      # IMDB, MiniLM-as-DistilBERT, CPU or GPU
    python -m training.train --data reviews.csv   # a user's CSV (Sephora's schema works as is)
    torchrun --nproc-per-node 4 -m training.train # several GPUs, same entry point

The Trainer gives progress bars, periodic validation, best-checkpoint selection, resume
after interruption (rerun the same command), fixed seeds, bf16/fp16 and gradient
accumulation; this module only prepares data and writes the released checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from review_sentiment.core.classifier import cpu_has_bf16
from review_sentiment.core.encoding import pad_batch, token_ids
from training import data as datasets
from training.base_model import DEFAULT_BASE_MODEL, load_base
from training.report import describe, to_markdown

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class EncodedSet(torch.utils.data.Dataset):
    """Pre-tokenized examples (head+tail truncated, as at serving time)."""

    def __init__(self, ids: list[list[int]], labels: list[int]):
        self.ids, self.labels = ids, labels

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def make_collator(pad_id: int):
    def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
        batch = pad_batch([e["input_ids"] for e in examples], pad_id)
        batch["labels"] = torch.tensor([e["labels"] for e in examples], dtype=torch.long)
        return batch

    return collate


def accuracy(eval_pred) -> dict[str, float]:
    logits, labels = eval_pred
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


def load_training_set(args) -> datasets.LabelledSet:
    if args.data == "imdb":
        data = datasets.load_imdb()
    else:
        data = datasets.load_csv(args.data, args.text_column, args.label_column, args.positive, args.negative)
    data = datasets.deduplicate(data)
    return datasets.balance(data, args.seed) if args.balance else data


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="imdb", help="'imdb' (default) or a CSV file")
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
    p.add_argument("--val-limit", type=int, default=2000, help="validation reviews scored during training")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--eval-steps", type=int, default=200)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    set_seed(args.seed)
    out = Path(args.output_dir)
    started = time.time()

    model, tokenizer = load_base(args.base_model)
    splits = datasets.split(load_training_set(args), args.seed)
    train = splits["train"]
    if args.train_limit:
        train = train.subset(range(min(args.train_limit, len(train))), train.name)
    val = splits["validation"].subset(range(min(args.val_limit, len(splits["validation"]))), "validation")

    def encode(s: datasets.LabelledSet) -> EncodedSet:
        return EncodedSet(token_ids(tokenizer, s.texts, args.max_length, args.head_fraction), s.labels)

    cuda = torch.cuda.is_available()
    targs = TrainingArguments(
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
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model,
        args=targs,
        train_dataset=encode(train),
        eval_dataset=encode(val),
        data_collator=make_collator(tokenizer.pad_token_id),
        compute_metrics=accuracy,
    )
    last = (
        None if args.no_resume else get_last_checkpoint(targs.output_dir) if Path(targs.output_dir).is_dir() else None
    )
    trainer.train(resume_from_checkpoint=last)

    if trainer.is_world_process_zero():
        final = out / "model"
        trainer.model.to(torch.float16).save_pretrained(final, safe_serialization=True)
        tokenizer.save_pretrained(final)
        sections = [describe(s, tokenizer, args.max_length) for s in (train, splits["validation"], splits["test"])]
        (out / "data_report.md").write_text(to_markdown(sections, [train.report.to_dict()]))
        info = {
            "command": "python -m training.train " + " ".join(sys.argv[1:] if argv is None else argv),
            "args": vars(args),
            "train_size": len(train),
            "resumed_from": last,
            "hardware": {
                "device": torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine(),
                "cpu_threads": torch.get_num_threads(),
                "bf16": targs.bf16,
            },
            "seconds_this_run": round(time.time() - started),
            "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "best_validation_accuracy": trainer.state.best_metric,
            "log_history": trainer.state.log_history,
            "data": sections,
            "load": train.report.to_dict(),
        }
        (final / "training_info.json").write_text(json.dumps(info, indent=2))
        print(f"model written to {final}")
    return out / "model"


if __name__ == "__main__":
    main()
