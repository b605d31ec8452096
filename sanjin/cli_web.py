"""`sanjin web`: serve the web pages with uvicorn (mounted by the main CLI)."""

from __future__ import annotations

import typer


def serve(host: str = typer.Option("127.0.0.1", "--host", help="监听地址 / address to listen on"),
          port: int = typer.Option(8000, "--port", min=1, max=65535, help="端口 / port")) -> None:
    """启动网页端 / serve the web app (set SANJIN_WEB_SECRET_KEY so sessions survive a restart)."""
    import uvicorn

    from web.app import create_app

    uvicorn.run(create_app(), host=host, port=port, proxy_headers=True, server_header=False)
