"""Background jobs: `collab jobs list` (interval, paused state, last runs from the history),
`collab jobs run NAME` (one run now, under the same one-runner lock as the nodes' scheduler,
recorded in the history and audited like the admin API's run), `collab jobs pause|resume NAME`
(for every node, persisted in `job_states`, audited)."""

from __future__ import annotations

import argparse
from typing import Any

from core.errors import NotFound
from ops._runtime import NotFoundError, add_common_arguments, run_command
from ops.exit_codes import ExitCode
from server.app import build_context
from server.settings import Settings
from services import job_admin


def configure_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    add_common_arguments(actions.add_parser("list", help="jobs and their last runs"))
    run = actions.add_parser("run", help="run one job now (exit 2 if it failed)")
    run.add_argument("name")
    add_common_arguments(run)
    for action, text in (
        ("pause", "skip its scheduled runs on every node"),
        ("resume", "undo pause"),
    ):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("name")
        add_common_arguments(sub)


async def jobs(settings: Settings, args: argparse.Namespace) -> Any:
    """The node's own job list (`build_context`); `run` starts the node's components without
    its scheduler or HTTP, since a job may use any of them (and `pause`/`resume` too, for the
    outbox that publishes their audit event)."""
    ctx = build_context(settings)
    if args.action == "list":
        await ctx.db.start()
        try:
            return await job_admin.list_jobs(ctx.db, ctx.scheduler)
        finally:
            await ctx.db.stop()
    if args.name not in ctx.scheduler.jobs:
        raise NotFoundError(f"no such job: {args.name}")
    await ctx.start()
    try:
        if args.action != "run":
            paused = args.action == "pause"
            return await job_admin.set_paused(ctx, ctx.scheduler, args.name, paused, None)
        try:
            return await job_admin.run_job(ctx, ctx.scheduler, args.name, None)
        except NotFound as err:
            raise NotFoundError(err.message) from err
        except Exception as err:
            return {"ran": True, "failed": repr(err)}
    finally:
        await ctx.stop()


def run(args: argparse.Namespace) -> int:
    return run_command(
        args,
        lambda settings: jobs(settings, args),
        exit_code=lambda payload: (
            ExitCode.CRITICAL if isinstance(payload, dict) and "failed" in payload else ExitCode.OK
        ),
    )
