"""Jinja2 templates of every notice kind; a package so setuptools ships the files inside the wheel."""
