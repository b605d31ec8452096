"""`sanjin audit verify [PROGRAM]`: walk the audit trail's hash chains and name the first broken row."""

from __future__ import annotations

import sys

import typer

from sanjin.terminal import SafeConsole, data

audit_app = typer.Typer(help="审计记录 / the audit trail", no_args_is_help=True)
console = SafeConsole(width=None if sys.stdout.isatty() else 160)


@audit_app.command("verify")
def audit_verify(program: str | None = typer.Argument(None, help="项目（缺省为全部） / one program, or every chain")) -> None:
    """校验审计记录哈希链，指出第一条被改动、删除或插入的记录 / verify the audit trail's hash chains (exit 1 if broken)."""
    from core.db import shared_engine
    from tasks.trust.audit_check import verify_audit

    report = verify_audit(shared_engine(), program)
    if report.broken is not None:
        SafeConsole(stderr=True).print(f"[red]审计记录校验失败 / audit trail broken:[/] {data(report.broken.message())}",
                                       highlight=False, markup=True)
        raise typer.Exit(1)
    heads = "；".join(f"{'系统链' if chain == 0 else f'项目链 {chain}'} {seq} 条，末条哈希 {digest[:16]}"
                     for chain, (seq, digest) in sorted(report.heads.items()))
    console.print(f"审计记录完整 / audit trail intact: {report.rows} 条 / rows checked（{heads}）", highlight=False)
