"""The ``digestbot`` command. Thin: parse, call the module that does the work, print.

Exit codes: 0 success (bad input files are reported, not fatal), 2 bad usage or
configuration, 1 anything else (a store error during a pass, dead letters after
``digest --send``, a failed command); 130 / 143 when SIGINT / SIGTERM stopped ``ingest``.

Everything printed and logged passes the redactor: configured secrets, token-shaped
strings and URL passwords never reach the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from bot.app import App
from bot.config import ConfigError, Settings, load_settings
from bot.delivery.drain import send_now
from bot.delivery.queue import status
from bot.evaluate import evaluate_by_day, evaluate_folder
from bot.ingest import run_ingest
from bot.logs import install_redaction
from bot.runtime import run_service
from bot.search import QueryError, search
from bot.store import subscriptions as subs
from bot.store.articles import list_articles
from bot.stories.service import list_stories, recluster
from bot.text.redact import Redactor
from bot.text.safe import describe_error, printable

log = logging.getLogger("digestbot")

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_SIGINT, EXIT_SIGTERM = 130, 143

# What this process must not show: set from the configuration in main() (patterns only before).
_redact: Callable[[str], str] = Redactor()


class UsageError(Exception):
    """Bad arguments detected after parsing (exit 2)."""


def _print(text: object = "", *, file: Any = None) -> None:
    (file or sys.stdout).write(_redact(str(text)) + "\n")


def _print_json(data: Any) -> None:
    sys.stdout.write(_redact(json.dumps(data, ensure_ascii=False, indent=2, default=str)) + "\n")


def _parse_since(value: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    def options(suppress: bool) -> argparse.ArgumentParser:
        o = argparse.ArgumentParser(add_help=False)
        o.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS if suppress else None,
                       help="config file (default ./config.yaml, else built in)")
        for flag, dest, text in ((("--json",), "json", "machine-readable output on stdout"),
                                 (("-v", "--verbose"), "verbose", "debug logging")):
            o.add_argument(*flag, dest=dest, action="store_true",
                           default=argparse.SUPPRESS if suppress else False, help=text)
        return o

    p = argparse.ArgumentParser(prog="digestbot", description="News digests for Telegram and Slack.",
                                parents=[options(suppress=False)])
    # Subcommands take the options too; SUPPRESS keeps a value given before the subcommand.
    common = options(suppress=True)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", parents=[common], help="the service: adapters, scheduler, delivery")
    ing = sub.add_parser("ingest", parents=[common], help="one pass over every source")
    ing.add_argument("--source", action="append", dest="only", metavar="NAME",
                     help="only this source (repeatable)")
    sub.add_parser("articles", parents=[common], help="stored articles")
    s = sub.add_parser("stories", parents=[common], help="stories, largest first")
    s.add_argument("--since", type=_parse_since, metavar="ISO")
    s.add_argument("--top", type=int, metavar="N", help="only the N largest, each with a sample of titles")
    sub.add_parser("recluster", parents=[common], help="rebuild all stories from the stored articles")

    d = sub.add_parser("digest", parents=[common], help="preview or send a digest")
    mode = d.add_mutually_exclusive_group(required=True)
    mode.add_argument("--preview", action="store_true")
    mode.add_argument("--send", action="store_true")
    d.add_argument("--format", choices=["telegram", "slack", "text"], default="text")
    d.add_argument("--locale", choices=["zh-CN", "en"])

    q = sub.add_parser("search", parents=[common], help="search the archive")
    q.add_argument("query", nargs="+")
    q.add_argument("--limit", type=int, default=10)
    q.add_argument("--offset", type=int, default=0)

    subs = sub.add_parser("subscriptions", parents=[common], help="list or add subscriptions")
    subs_sub = subs.add_subparsers(dest="subs_command")
    add = subs_sub.add_parser("add", parents=[common], help="subscribe chats by id")
    add.add_argument("adapter")
    add.add_argument("chat_ids", nargs="+", metavar="CHAT_ID")
    add.add_argument("--locale", choices=["zh-CN", "en"])
    add.add_argument("--tz", metavar="ZONE")
    add.add_argument("--times", metavar="HH:MM,…")
    rm = subs_sub.add_parser("remove", parents=[common], help="unsubscribe chats by id")
    rm.add_argument("adapter")
    rm.add_argument("chat_ids", nargs="+", metavar="CHAT_ID")

    sub.add_parser("outbox", parents=[common], help="pending, sent and dead-letter counts")
    sub.add_parser("check", parents=[common], help="validate the configuration")

    ev = sub.add_parser("evaluate", parents=[common], help="score story clustering on a labelled folder")
    ev.add_argument("folder")
    ev.add_argument("--labels", help="labels.tsv (default FOLDER/../labels.tsv or FOLDER/labels.tsv)")
    ev.add_argument("--by-day", action="store_true",
                    help="also each calendar day alone in a fresh store: per day and document-weighted mean")
    return p


def _setup_logging(settings: Settings | None, verbose: bool) -> None:
    level = logging.DEBUG if verbose else getattr(logging, settings.logging.level if settings else "INFO")
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Libraries talk a lot at INFO; their warnings still show.
    for noisy in ("httpx", "httpcore", "telegram", "apscheduler", "slack_bolt", "slack_sdk", "aiohttp",
                  "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.DEBUG)
    install_redaction(_redact)


Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


async def _with_app(settings: Settings, fn: Callable[[App], Awaitable[int]]) -> int:
    app = await App.open(settings)
    try:
        return await fn(app)
    finally:
        await app.close()


def _show(args: argparse.Namespace, value: Any, lines: list[str]) -> None:
    """``value`` as JSON with ``--json``, else the lines that say it for a person."""
    if args.json:
        _print_json(value)
    else:
        for line in lines:
            _print(line)


def _on_app(fn: Callable[[argparse.Namespace, App], Awaitable[int]]) -> Handler:
    """A command that runs on an open App (closed again however it ends)."""

    async def run(args: argparse.Namespace, settings: Settings) -> int:
        return await _with_app(settings, lambda app: fn(args, app))

    return run


async def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    if args.json:
        _print_json({"ok": True, "origin": settings.origin})
    else:
        _print(f"configuration OK ({settings.origin})")
    return EXIT_OK


async def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    names = {s.name for s in settings.sources}
    unknown = [n for n in args.only or [] if n not in names]
    if unknown:
        raise UsageError(f"ingest: unknown source {', '.join(unknown)} "
                         f"(configured: {', '.join(sorted(names))})")

    async def go(app: App) -> int:
        stop = asyncio.Event()
        caught: list[signal.Signals] = []

        def on_signal(sig: signal.Signals) -> None:
            # The batch being written is finished, nothing more is read; a second signal is
            # not caught again, so it stops the process at once (the open transaction rolls back).
            caught.append(sig)
            stop.set()
            for s in installed:
                loop.remove_signal_handler(s)

        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, on_signal, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not POSIX, or not the main thread
                pass
        try:
            report = await run_ingest(app, progress=not args.json and sys.stderr.isatty(), only=args.only,
                                      stop=stop)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
        if caught:
            report.interrupted = caught[0].name
        if args.json:
            _print_json(report.as_dict())
        else:
            _print(report.render_text())
        for problem in report.store_errors:
            _print(f"digestbot: store error: {problem}", file=sys.stderr)
        if caught:
            _print(f"digestbot: ingest stopped by {caught[0].name}; the batches written are kept, "
                   "the rest is read on the next pass", file=sys.stderr)
            return EXIT_SIGTERM if caught[0] == signal.SIGTERM else EXIT_SIGINT
        return EXIT_ERROR if report.store_errors else EXIT_OK

    return await _with_app(settings, go)


@_on_app
async def cmd_articles(args: argparse.Namespace, app: App) -> int:
    arts = await list_articles(app.store)
    if args.json:
        _print_json([a.as_dict() for a in arts])
    else:
        for a in arts:
            story = f" story={a.story_id}" if a.story_id else ""
            dup = f" dup_of={a.duplicate_of}" if a.duplicate_of else ""
            _print(f"{a.id:>6}  {a.published_at:%Y-%m-%d %H:%M}Z  [{printable(a.outlet)}] "
                   f"{printable(a.title)}{story}{dup}")
        _print(f"{len(arts)} articles")
    return EXIT_OK


SAMPLE_TITLES = 5


def story_sample(story: Any, n: int = SAMPLE_TITLES) -> list[Any]:
    """Up to ``n`` member articles to judge a story by: one per outlet first (originals before
    duplicates, in publication order), then the others."""
    members = sorted(story.articles, key=lambda a: (a.duplicate_of is not None, a.published_at, a.id or 0))
    seen: set[str] = set()
    first: list[Any] = []
    rest: list[Any] = []
    for a in members:
        (rest if a.outlet in seen else first).append(a)
        seen.add(a.outlet)
    return (first + rest)[:n]


async def cmd_stories(args: argparse.Namespace, settings: Settings) -> int:
    if args.top is not None and args.top < 1:
        raise UsageError("--top must be at least 1")

    async def go(app: App) -> int:
        stories = await list_stories(app.store, since=args.since)
        if args.top is not None:
            stories = stories[:args.top]
        if args.json:
            out = []
            for s in stories:
                d = s.as_dict()
                if args.top is not None:
                    sample = story_sample(s)
                    d["sample"] = [{"id": a.id, "outlet": a.outlet, "title": a.title} for a in sample]
                    d["more"] = max(0, len(s.articles) - len(sample))
                out.append(d)
            _print_json(out)
            return EXIT_OK
        for s in stories:
            _print(f"{s.id:>6}  {s.size:>3} articles  {len(s.sources):>2} outlets  {printable(s.title)}")
            _print(f"        {printable(', '.join(s.sources))}")
            if args.top is not None:
                sample = story_sample(s)
                for a in sample:
                    _print(f"          - [{printable(a.outlet)}] {printable(a.title)}")
                if len(s.articles) > len(sample):
                    _print(f"          … and {len(s.articles) - len(sample)} more")
        _print(f"{len(stories)} stories")
        return EXIT_OK

    return await _with_app(settings, go)


@_on_app
async def cmd_recluster(args: argparse.Namespace, app: App) -> int:
    result = await recluster(app)
    lines = [f"rebuilt {result['stories']} stories from {result['articles']} articles "
             f"({result['duplicates']} duplicates)"]
    skipped: Any = result["skipped"]
    if skipped:
        lines.append(f"{len(skipped)} articles could not be placed and have no story:")
        lines += [f"  article {s['id']} ({s['title']!r}): {s['reason']}" for s in skipped]
    _show(args, result, lines)
    return EXIT_OK


@_on_app
async def cmd_digest(args: argparse.Namespace, app: App) -> int:
    if args.preview:
        payloads = await app.preview_digest(fmt=args.format, locale=args.locale)
        if args.json:
            _print_json(payloads)
        else:
            for i, p in enumerate(payloads):
                if i:
                    _print("\n" + "─" * 40 + "\n")
                _print(p.get("text") if isinstance(p, dict) else p)
        return EXIT_OK
    result = await send_now(app)
    _show(args, result, [f"{result['subscriptions']} subscriptions, {result['messages']} messages queued, "
                         f"{result['sent']} sent, {result['dead']} dead, {result['pending']} pending"])
    if result.get("dead", 0):
        _print(f"digestbot: {result['dead']} messages left as dead letters (digestbot outbox shows why)",
               file=sys.stderr)
    return EXIT_OK if result.get("pending", 0) == 0 and result.get("dead", 0) == 0 else EXIT_ERROR


async def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    query = " ".join(args.query)
    if not query.strip():
        raise UsageError("search: give a query, e.g. digestbot search 苹果 阿里")
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")

    async def go(app: App) -> int:
        try:
            res = await search(app.store, query, limit=args.limit, offset=args.offset,
                               max_chars=settings.commands.max_query_chars)
        except QueryError as exc:
            raise UsageError(f"search: {exc}; give a query, e.g. digestbot search 苹果 阿里") from None
        if args.json:
            _print_json(res.as_dict())
        else:
            _print(res.render_text())
        return EXIT_OK

    return await _with_app(settings, go)


@_on_app
async def cmd_subscriptions(args: argparse.Namespace, app: App) -> int:
    if args.subs_command == "add":
        if args.adapter not in app.settings.adapter_configs:
            raise UsageError(f"adapter {args.adapter!r} is not configured "
                             f"(configured: {', '.join(app.adapter_names)})")
        try:
            out = await subs.add_many(app, args.adapter, args.chat_ids, locale=args.locale, tz=args.tz,
                                      times=args.times)
        except ValueError as exc:  # a bad zone, time or chat id is a usage error (exit 2)
            raise UsageError(str(exc)) from None
        if args.json:
            _print_json([s.as_dict() for s in out])
        else:
            for s in out:
                times = ",".join(s.times)
                _print(f"subscribed {s.adapter}:{s.chat_id} ({s.locale}, {s.timezone}, {times})")
        return EXIT_OK
    if args.subs_command == "remove":
        n = await subs.deactivate_many(app.store, args.adapter, args.chat_ids, reason="removed by admin")
        _print(json.dumps({"removed": n}) if args.json else f"unsubscribed {n} chats")
        return EXIT_OK
    items = await subs.list_subscriptions(app.store)
    if args.json:
        _print_json([s.as_dict() for s in items])
    else:
        for s in items:
            state = "active" if s.active else f"inactive ({s.retired_reason or ''})"
            _print(f"{s.adapter}:{s.chat_id}  {s.locale}  {s.timezone}  {','.join(s.times)}  {state}")
        _print(f"{len(items)} subscriptions")
    return EXIT_OK


@_on_app
async def cmd_outbox(args: argparse.Namespace, app: App) -> int:
    st = await status(app.store)
    if args.json:
        _print_json(st)
    else:
        _print(f"pending {st['pending']}  sent {st['sent']}  dead {st['dead']}")
        for d in st["dead_letters"]:
            _print(f"  dead #{d['id']} {d['adapter']}:{d['chat_id']} after {d['attempts']} attempts: "
                  f"{d['reason']}")
    return EXIT_OK


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    return await run_service(settings)


async def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    result: Any
    if args.by_day:
        result = await evaluate_by_day(args.folder, labels=args.labels, settings=settings)
    else:
        result = await evaluate_folder(args.folder, labels=args.labels, settings=settings)
    if args.json:
        _print_json(result.as_dict())
    else:
        _print(result.render_text())
    return EXIT_OK


COMMANDS: dict[str, Handler] = {
    "check": cmd_check,
    "ingest": cmd_ingest,
    "articles": cmd_articles,
    "stories": cmd_stories,
    "recluster": cmd_recluster,
    "digest": cmd_digest,
    "search": cmd_search,
    "subscriptions": cmd_subscriptions,
    "outbox": cmd_outbox,
    "run": cmd_run,
    "evaluate": cmd_evaluate,
}


def main(argv: list[str] | None = None) -> int:
    global _redact
    parser = build_parser()
    args = parser.parse_args(argv)
    _redact = Redactor()
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        _setup_logging(None, args.verbose)
        if args.json:
            _print_json({"ok": False, "errors": [{"path": p, "message": m} for p, m in exc.problems]})
        for path, msg in exc.problems:
            _print(f"{path}: {msg}" if path else msg, file=sys.stderr)
        return EXIT_USAGE
    _redact = Redactor(settings.secrets)
    _setup_logging(settings, args.verbose)
    try:
        return asyncio.run(COMMANDS[args.command](args, settings))
    except UsageError as exc:
        _print(f"digestbot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _print("digestbot: interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except Exception as exc:
        log.debug("command failed", exc_info=True)
        hint = "" if args.verbose else " (run with -v for the traceback)"
        _print(f"digestbot: error: {describe_error(exc)}{hint}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
