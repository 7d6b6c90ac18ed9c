"""Command line for a running TorchServe: classify reviews, describe and scale the model.

    python -m review_sentiment predict "Great shade, lasts all day"
    echo "Broke after a week" | python -m review_sentiment predict -
    python -m review_sentiment predict --file reviews.csv --output scored.csv
    python -m review_sentiment describe
    python -m review_sentiment scale 2

Keys come from the server's key_file.json, endpoints from its endpoints.json (both in
SENTIMENT_RUN_DIR, default ./run).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from review_sentiment import paths
from review_sentiment.client.many import DEFAULT_CONCURRENCY, predict_many
from review_sentiment.client.rest import ApiError, TorchServeClient
from review_sentiment.tables import CSV_ENCODING, TableError, read_csv


def read_reviews(path: Path) -> list[dict]:
    """Rows of a CSV or JSONL file (UTF-8, a byte-order mark allowed); TableError says what is wrong."""
    if path.suffix.lower() not in (".jsonl", ".ndjson"):
        return read_csv(path)[1]
    rows = []
    try:
        with path.open(encoding=CSV_ENCODING) as fh:
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise TableError(f"{path.name}, line {number}: not a JSON object")
                    rows.append(row)
    except UnicodeDecodeError as error:
        raise TableError(f"{path.name} is not UTF-8 text (undecodable byte at offset {error.start})") from None
    except json.JSONDecodeError as error:
        raise TableError(f"{path.name}, line {number}: not valid JSON ({error.msg})") from None
    return rows


def _flat(result: dict) -> dict:
    if "error" in result:
        return {"label": "", "score": "", "error": result["error"].get("message", "")}
    return {"label": result["label"], "score": f"{result['score']:.4f}", "error": ""}


def cmd_predict(client: TorchServeClient, args: argparse.Namespace) -> int:
    if args.file:
        try:
            rows = read_reviews(Path(args.file))
        except (TableError, OSError) as error:
            sys.exit(f"cannot read {args.file}: {error}")
        missing = [i for i, row in enumerate(rows) if not isinstance(row.get(args.text_column), str)]
        if missing:
            sys.exit(f"{args.file}: rows {missing[:5]} have no '{args.text_column}' field")
        results = predict_many(client, [row[args.text_column] for row in rows], args.concurrency)
        write_results(rows, results, Path(args.output) if args.output else None)
        failed = sum("error" in r for r in results)
        print(f"{len(results)} reviews, {failed} refused", file=sys.stderr)
        return 1 if failed else 0
    text = sys.stdin.read() if args.text in (None, "-") else args.text
    result = predict_many(client, [text], 1)[0]
    print(json.dumps(result, indent=2))
    return 1 if "error" in result else 0


def write_results(rows: list[dict], results: list[dict], output: Path | None) -> None:
    if output is None or output.suffix.lower() in (".jsonl", ".ndjson"):
        lines = [json.dumps({**row, "prediction": result}) for row, result in zip(rows, results, strict=True)]
        text = "\n".join(lines) + "\n"
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text)
        return
    with output.open("w", newline="", encoding="utf-8") as fh:
        fields = list(rows[0]) + ["label", "score", "error"] if rows else ["label", "score", "error"]
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row, result in zip(rows, results, strict=True):
            writer.writerow({**row, **_flat(result)})


def cmd_describe(client: TorchServeClient, args: argparse.Namespace) -> int:
    print(json.dumps(client.describe(), indent=2))
    return 0


def cmd_scale(client: TorchServeClient, args: argparse.Namespace) -> int:
    client.scale(args.workers, args.max_workers)
    workers = client.describe()[0]["workers"]
    states = ", ".join(f"{w['id']}:{w['status']}" for w in workers)
    print(f"{client.model}: {len(workers)} workers ({states})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m review_sentiment",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run-dir", default=str(paths.RUN_DIR), help="server run folder (keys, endpoints)")
    parser.add_argument("--model", default=paths.MODEL_NAME)
    sub = parser.add_subparsers(dest="command", required=True)
    predict = sub.add_parser("predict", help="classify a text, stdin (-), or a CSV/JSONL file")
    predict.add_argument("text", nargs="?", help="review text, or - for stdin")
    predict.add_argument("--file", help="CSV or JSONL file of reviews")
    predict.add_argument("--text-column", default="text", help="field holding the review (default: text)")
    predict.add_argument("--output", help="write CSV or JSONL here (default: JSONL on stdout)")
    predict.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="requests in flight (default %(default)s)"
    )
    sub.add_parser("describe", help="show the model's workers and batch settings")
    scale = sub.add_parser("scale", help="set the number of workers (management API)")
    scale.add_argument("workers", type=int)
    scale.add_argument("--max-workers", type=int)
    args = parser.parse_args(argv)

    client = TorchServeClient.for_run_dir(Path(args.run_dir), model=args.model)
    handlers = {"predict": cmd_predict, "describe": cmd_describe, "scale": cmd_scale}
    try:
        return handlers[args.command](client, args)
    except ApiError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
