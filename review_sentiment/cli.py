"""Command line for a running TorchServe: classify reviews, describe and scale the model.

    python -m review_sentiment predict "Great shade, lasts all day"
    echo "Broke after a week" | python -m review_sentiment predict -
    python -m review_sentiment predict --file reviews.csv --output scored.csv
    python -m review_sentiment predict --model sentiment-accurate "Soft, but it pilled in a week"
    python -m review_sentiment describe [--json]
    python -m review_sentiment scale 2

Keys come from the server's key_file.json, endpoints from its endpoints.json (both in
SENTIMENT_RUN_DIR, default ./run).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from review_sentiment import paths
from review_sentiment.client.many import DEFAULT_CONCURRENCY, predict_many
from review_sentiment.client.refusals import ServiceError
from review_sentiment.client.rest import TorchServeClient
from review_sentiment.tables import TableError, Verdict, is_jsonl, read_table, write_csv, write_jsonl


def _verdict(result: dict) -> Verdict:
    if "error" in result:
        return Verdict(error=result["error"].get("message", ""))
    return Verdict(result["label"], result["score"], result.get("probabilities", {}).get("positive"))


def cmd_predict(client: TorchServeClient, args: argparse.Namespace) -> int:
    if args.file:
        try:
            rows = read_table(args.file)[1]
        except (TableError, OSError) as error:
            sys.exit(f"cannot read {args.file}: {error}")
        missing = [i for i, row in enumerate(rows) if not isinstance(row.get(args.text_column), str)]
        if missing:
            sys.exit(f"{args.file}: rows {missing[:5]} have no '{args.text_column}' field")
        results = predict_many(client, [row[args.text_column] for row in rows], args.concurrency)
        write_results(rows, results, Path(args.output) if args.output else None)
        failed = sum("error" in r for r in results)
        print(f"{len(results)} reviews, {failed} refused{_answered_by(results)}", file=sys.stderr)
        return 1 if failed else 0
    text = sys.stdin.read() if args.text in (None, "-") else args.text
    result = predict_many(client, [text], 1)[0]
    print(json.dumps(result, indent=2))
    return 1 if "error" in result else 0


def _answered_by(results: list[dict]) -> str:
    """ ", answered by <model> <version>[, <version>]" from the answers themselves (a rollout may
    switch versions mid-file), or "" when none answered."""
    answered = [r for r in results if "model" in r]
    if not answered:
        return ""
    versions = sorted({str(r.get("model_version")) for r in answered})
    return f", answered by {answered[0]['model']} {', '.join(versions)}"


def write_results(rows: list[dict], results: list[dict], output: Path | None) -> None:
    """JSONL on stdout, or to `output`: a CSV unless its name ends in .jsonl or .ndjson."""
    if output is None:
        write_jsonl(sys.stdout, rows, results)
        return
    with output.open("w", newline="", encoding="utf-8") as fh:
        if is_jsonl(output):
            write_jsonl(fh, rows, results)
        else:
            write_csv(fh, rows, [_verdict(result) for result in results])


def cmd_describe(client: TorchServeClient, args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(client.versions(), indent=2))
        return 0
    from review_sentiment.serve.rollout import Operator, RolloutError

    try:
        print("\n".join(Operator(client, paths.model_store()).describe()))
    except RolloutError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
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
    parser.add_argument("--run-dir", default=str(paths.run_dir()), help="server run folder (keys, endpoints)")
    parser.add_argument("--model", default=paths.model_name(), help="the model's name (default %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    predict = sub.add_parser("predict", help="classify a text, stdin (-), or a CSV/JSONL file")
    predict.add_argument("text", nargs="?", help="review text, or - for stdin")
    predict.add_argument(
        "--model",
        dest="predict_model",
        help=f"the model that answers: {paths.ACCURATE_MODEL_NAME} where the server registers it "
        "(SENTIMENT_ACCURATE_MODEL=on); default the fast one, as the option before the verb",
    )
    predict.add_argument("--file", help="CSV or JSONL file of reviews")
    predict.add_argument("--text-column", default="text", help="field holding the review (default: text)")
    predict.add_argument("--output", help="write CSV or JSONL here (default: JSONL on stdout)")
    predict.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="requests in flight (default %(default)s)"
    )
    describe = sub.add_parser("describe", help="the model's versions, the default and their workers")
    describe.add_argument("--json", action="store_true", help="TorchServe's own description of every version")
    scale = sub.add_parser("scale", help="set the number of workers (management API)")
    scale.add_argument("workers", type=int)
    scale.add_argument("--max-workers", type=int)
    args = parser.parse_args(argv)

    model = getattr(args, "predict_model", None) or args.model
    client = TorchServeClient.for_run_dir(Path(args.run_dir), model=model)
    handlers = {"predict": cmd_predict, "describe": cmd_describe, "scale": cmd_scale}
    try:
        return handlers[args.command](client, args)
    except ServiceError as err:
        print(f"error: {err.kind}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
