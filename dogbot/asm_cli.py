"""`dogbot asm sync|check|status`: registering dogs in the shelter's Animal Shelter Manager, and its words.

Exit status: 0 when everything due reached ASM; 1 when something could not be sent (ASM down, or it
refused a row: the reason is printed); 2 when ASM is not set up; 3 while another process syncs.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, tzinfo

from dogbot.core.clock import local_iso, on_clock

SETUP_HINT = (
    "Animal Shelter Manager is not set up: set DOGBOT_ASM_URL and DOGBOT_ASM_USERNAME + DOGBOT_ASM_PASSWORD "
    '(or DOGBOT_ASM_KEY) in .env (README, "Animal Shelter Manager").'
)


def register(subparsers) -> None:
    asm = subparsers.add_parser("asm", help="Animal Shelter Manager: sync (send dogs), check (login), status")
    asm.add_argument("action", choices=["sync", "check", "status"])
    asm.add_argument(
        "--now",
        action="store_true",
        help="sync: send every waiting dog now (skip the quiet time and the back-off) and retry refused ones",
    )
    asm.add_argument("--json", action="store_true", help="sync, status: one JSON object")
    asm.set_defaults(handler=cmd_asm)


def cmd_asm(container, args: argparse.Namespace) -> int:
    if not container.asm_configured:
        print(SETUP_HINT, file=sys.stderr)
        return 2
    if args.action == "check":
        return _check(container)
    if args.action == "status":
        return _status(container, as_json=args.json)
    return _sync(container, send_all=args.now, as_json=args.json)


def _check(container) -> int:
    from jobs.asm_client import AsmRefused, AsmUnreachable

    url = container.settings.asm_url
    try:
        on_shelter = container.asm_sync.check()
    except AsmRefused as error:
        print(f"ASM at {url} answered but refused: {error}", file=sys.stderr)
        return 1
    except AsmUnreachable as error:
        print(str(error), file=sys.stderr)
        return 1
    print(
        f"logged in to ASM at {url}: it lists {on_shelter} animals on the shelter; dogbot can send dogs to it"
    )
    return 0


def _status(container, *, as_json: bool) -> int:
    overview = container.asm_sync.overview()
    if as_json:
        print(
            json.dumps(
                {
                    "in_asm": overview.in_asm,
                    "waiting": [{"code": code, "why": why} for code, why in overview.waiting],
                    "failed": [{"code": code, "why": why} for code, why in overview.failed],
                    "not_settled": overview.not_settled,
                }
            )
        )
        return 0
    print(f"{_dogs(overview.in_asm)} in ASM")
    for code, why in overview.waiting:
        print(f"waiting: {code}" + (f" ({why})" if why else " (not sent yet)"))
    for code, why in overview.failed:
        print(f"refused by ASM: {code}: {why}")
    if overview.not_settled:
        print(f"{_dogs(overview.not_settled)} waiting for staff to settle the breed (sent once settled)")
    return 0


def _sync(container, *, send_all: bool, as_json: bool) -> int:
    from jobs.lock import LockBusy

    try:
        report = container.asm_sync.sync(send_all=send_all)
    except LockBusy as busy:
        print(f"another process is sending to ASM now ({busy}); try again in a minute", file=sys.stderr)
        return 3
    if as_json:
        print(json.dumps(report_json(report, container.timezone)))
    else:
        for line in report_lines(report, container.timezone):
            print(line)
    return 0 if report.ok else 1


def report_json(report, tz: tzinfo = UTC) -> dict:
    return {
        "sent": report.sent,
        "updated": report.updated,
        "waiting": [{"code": code, "why": why} for code, why in report.waiting],
        "failed": [{"code": code, "why": why} for code, why in report.failed],
        "later": [{"code": code, "at": local_iso(at, tz)} for code, at in report.later],
        "not_settled": report.not_settled,
        "already_in_asm": report.already_there,
        "fix_in_asm": [
            {
                "code": fix.code,
                "merged_into": fix.merged_into,
                "not_a_dog": fix.not_a_dog,
                "removed": fix.removed,
                "differences": [list(d) for d in fix.differences],
            }
            for fix in report.hand_fixes
        ],
        "checked_asm": report.checked_asm,
    }


def report_lines(report, tz: tzinfo = UTC) -> list[str]:
    """What a sync did, in lines; times on the shelter's clock ``tz``, with its zone."""
    lines = []
    if report.sent:
        lines.append(f"sent {_dogs(len(report.sent))} to ASM (new animals): {', '.join(report.sent)}")
    if report.updated:
        lines.append(f"updated {_dogs(len(report.updated))} in ASM: {', '.join(report.updated)}")
    if report.already_there:
        lines.append(
            f"already in ASM after an interrupted send (not sent again): {', '.join(report.already_there)}"
        )
    for code, why in report.waiting:
        lines.append(f"not sent, will try again: {code}: {why}")
    for code, why in report.failed:
        lines.append(f"refused by ASM: {code}: {why}")
    if report.later:
        first = _local(min(at for _, at in report.later), tz)
        lines.append(f"{len(report.later)} dogs wait to be sent (the next at {first}; --now sends them now)")
    if report.not_settled:
        lines.append(f"{_dogs(report.not_settled)} waiting for staff to settle the breed (sent once settled)")
    for fix in report.hand_fixes:
        if fix.merged_into or fix.not_a_dog or fix.removed:
            why = (
                f"the same dog as {fix.merged_into}"
                if fix.merged_into
                else "removed (registered by mistake)"
                if fix.removed
                else "not a dog"
            )
            lines.append(f"fix in ASM by hand: {fix.code} is {why} in dogbot; remove it from ASM")
        else:
            said = "; ".join(
                f"{what} is {asm or '(none)'} in ASM, {ours or '(none)'} in dogbot"
                for what, asm, ours in fix.differences
            )
            lines.append(f"fix in ASM by hand (ASM's import cannot change these): {fix.code}: {said}")
    if not report.checked_asm:
        lines.append("could not read ASM's animals, so nothing was checked against them")
    if not lines:
        lines.append("nothing to send: ASM has every settled dog")
    return lines


def _dogs(count: int) -> str:
    return f"{count} dog" if count == 1 else f"{count} dogs"


def _local(moment: datetime, tz: tzinfo) -> str:
    """``2026-12-31 23:30 PST``: the shelter's time and its zone."""
    return f"{on_clock(moment, tz):%Y-%m-%d %H:%M %Z}"
