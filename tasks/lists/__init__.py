"""The public lists: computing and versioning them, and rendering their files (HTML, XLSX, CSV) and downloads."""
