"""Uploads of CRM/billing exports: read, map, parse, validate, load in one transaction, undo."""
from revops.ingest.load import Preview, UploadResult, ingest_file, load, preview, undo, upload_log

__all__ = ["Preview", "UploadResult", "ingest_file", "load", "preview", "undo", "upload_log"]
