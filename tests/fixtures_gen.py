"""Test files generated from one canonical table, written the way CRMs and spreadsheets export them."""
from __future__ import annotations

import csv
import datetime as dt
import io

import openpyxl

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def sf18(id15: str) -> str:
    """Salesforce's 18-character id, written here independently of the code under test."""
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, ch in enumerate(id15[chunk * 5:chunk * 5 + 5]) if "A" <= ch <= "Z")
        suffix += _ALPHABET[bits]
    return id15 + suffix


IDS15 = ["0065g00000AbCdE", "0065g00000XyZzQ", "0065g00000QwErT", "0065g00000aSdFg", "0065g00000ZxCvB",
         "0065g00000PoIuY"]

# The canonical deals: names with commas, quotes, a line break, accents and formula-looking text.
DEALS: list[dict[str, object]] = [
    dict(opportunity_id=sf18(IDS15[0]), opportunity_name="Acme, expansion", account_id="Acme, Inc.",
         stage="Closed Won", owner="José Álvarez", source="Partner", type="new_business", amount=1234.50,
         created_at=dt.date(2024, 1, 5), close_date=dt.date(2024, 3, 15), forecast_category="closed",
         probability=1.0, is_closed=True, is_won=True),
    dict(opportunity_id=sf18(IDS15[1]), opportunity_name='Beta "Big" deal', account_id="Beta GmbH",
         stage="Negotiation", owner="Anna Müller", source="Web", type="expansion", amount=250000.00,
         created_at=dt.date(2024, 2, 10), close_date=dt.date(2024, 6, 30), forecast_category="best_case",
         probability=0.75, is_closed=False, is_won=False),
    dict(opportunity_id=sf18(IDS15[2]), opportunity_name="Gamma renewal", account_id="Gamma Ltd",
         stage="Closed Lost", owner="Anna Müller", source="Partner", type="renewal", amount=980.10,
         created_at=dt.date(2023, 11, 20), close_date=dt.date(2024, 1, 31), forecast_category="omitted",
         probability=0.0, is_closed=True, is_won=False),
    dict(opportunity_id=sf18(IDS15[3]), opportunity_name="Delta\nphase 2", account_id="Delta SA",
         stage="Prospecting", owner="José Álvarez", source="Event", type="new_business", amount=None,
         created_at=dt.date(2024, 3, 1), close_date=dt.date(2024, 9, 13), forecast_category="pipeline",
         probability=0.1, is_closed=False, is_won=False),
    dict(opportunity_id=sf18(IDS15[4]), opportunity_name='=HYPERLINK("http://x.example","click")',
         account_id="Epsilon", stage="Proposal", owner="Kim Lee", source="Web", type="expansion", amount=12.00,
         created_at=dt.date(2024, 4, 2), close_date=dt.date(2024, 7, 22), forecast_category="commit",
         probability=0.5, is_closed=False, is_won=False),
    dict(opportunity_id=sf18(IDS15[5]), opportunity_name="Zeta", account_id="Zeta Corp", stage="Closed Won",
         owner="Kim Lee", source="Event", type="renewal", amount=1000000.00, created_at=dt.date(2024, 1, 13),
         close_date=dt.date(2024, 2, 14), forecast_category="closed", probability=1.0, is_closed=True,
         is_won=True),
]

_SF_TYPE = {"new_business": "New Business", "expansion": "Upsell", "renewal": "Renewal"}
_HS_TYPE = {"new_business": "New Business", "expansion": "Existing Business", "renewal": "Renewal"}
_SF_FORECAST = {"closed": "Closed", "best_case": "Best Case", "omitted": "Omitted", "pipeline": "Pipeline",
                "commit": "Commit"}
_HS_FORECAST = {"closed": "Closed won", "best_case": "Best case", "omitted": "Not forecasted",
                "pipeline": "Pipeline", "commit": "Commit"}


def _csv(rows: list[list[object]], *, delimiter: str = ",", newline: str = "\n", quote_all: bool = False) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline,
                        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return out.getvalue()


def canonical_csv() -> bytes:
    """The deals with canonical headers, ISO dates, plain numbers and true/false."""
    cols = ["opportunity_id", "opportunity_name", "account_id", "stage", "owner", "source", "type", "amount",
            "created_at", "close_date", "forecast_category", "probability", "is_closed", "is_won"]
    rows: list[list[object]] = [cols]
    for d in DEALS:
        rows.append([str(d[c]).lower() if isinstance(d[c], bool) else
                     (d[c].isoformat() if isinstance(d[c], dt.date) else d[c]) for c in cols])
    return _csv(rows).encode("utf-8")


def _us_money(v: object) -> str:
    return "" if v is None else f"${v:,.2f}"


def _eu_money(v: object) -> str:
    if v is None:
        return ""
    us = f"{v:,.2f}"
    return us.replace(",", " ").replace(".", ",").replace(" ", ".") + " €"


def _mdy(d: dt.date) -> str:
    return f"{d.month}/{d.day}/{d.year}"


def _dmy(d: dt.date) -> str:
    return f"{d.day:02d}/{d.month:02d}/{d.year}"


SF_FOOTER = ["", "", "Opportunity Pipeline", "Copyright (c) 2000-2024 salesforce.com, inc. All rights reserved.",
             "Confidential Information - Do Not Distribute", "Generated By:  Kim Lee  4/2/2024 10:22 AM",
             "Example Corp"]


def salesforce_report_csv() -> bytes:
    """A Salesforce report export: labels, $1,234.50, M/D/YYYY, 15-char ids, BOM, CRLF, all quoted, footer."""
    header = ["Opportunity Owner", "Account Name", "Opportunity Name", "Stage", "Fiscal Period", "Amount",
              "Probability (%)", "Age", "Close Date", "Created Date", "Next Step", "Lead Source", "Type",
              "Forecast Category", "Opportunity ID"]
    rows: list[list[object]] = [header]
    for d, short in zip(DEALS, IDS15):
        rows.append([d["owner"], d["account_id"], d["opportunity_name"], d["stage"], "Q1-2024",
                     _us_money(d["amount"]), f"{round(float(d['probability']) * 100)}%", 70,  # type: ignore[arg-type]
                     _mdy(d["close_date"]), _mdy(d["created_at"]), "", d["source"],  # type: ignore[arg-type]
                     _SF_TYPE[str(d["type"])], _SF_FORECAST[str(d["forecast_category"])], short])
    text = _csv(rows, newline="\r\n", quote_all=True) + "".join(f'"{line}"\r\n' for line in SF_FOOTER)
    return b"\xef\xbb\xbf" + text.encode("utf-8")


def hubspot_csv() -> bytes:
    """A HubSpot deals export: its labels, dates with a time, fractions, a pipeline column."""
    header = ["Record ID", "Deal Name", "Deal Stage", "Close Date", "Create Date", "Deal owner", "Pipeline",
              "Deal Type", "Forecast category", "Amount", "Associated Company", "Deal probability",
              "Original Source"]
    rows: list[list[object]] = [header]
    for d in DEALS:
        rows.append([d["opportunity_id"], d["opportunity_name"], d["stage"],
                     f"{d['close_date']:%Y-%m-%d} 00:00", f"{d['created_at']:%Y-%m-%d} 09:30",
                     d["owner"], "Sales Pipeline", _HS_TYPE[str(d["type"])],
                     _HS_FORECAST[str(d["forecast_category"])], "" if d["amount"] is None else d["amount"],
                     d["account_id"], d["probability"], d["source"]])
    return _csv(rows).encode("utf-8")


def european_csv() -> bytes:
    """A European export: semicolons, 1.234,50 €, D/M/YYYY, percentages, Windows-1252."""
    header = ["Opportunity ID", "Opportunity Name", "Account Name", "Stage", "Amount", "Close Date",
              "Created Date", "Opportunity Owner", "Lead Source", "Type", "Forecast Category", "Probability (%)"]
    rows: list[list[object]] = [header]
    for d, short in zip(DEALS, IDS15):
        rows.append([short, d["opportunity_name"], d["account_id"], d["stage"], _eu_money(d["amount"]),
                     _dmy(d["close_date"]), _dmy(d["created_at"]), d["owner"], d["source"],  # type: ignore[arg-type]
                     _SF_TYPE[str(d["type"])], _SF_FORECAST[str(d["forecast_category"])],
                     f"{round(float(d['probability']) * 100)} %"])  # type: ignore[arg-type]
    return _csv(rows, delimiter=";", newline="\r\n").encode("cp1252")


def utf16_tsv() -> bytes:
    """Excel's "Unicode text": UTF-16 with BOM, tab separated, canonical headers."""
    text = canonical_csv().decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    return _csv(rows, delimiter="\t", newline="\r\n").encode("utf-16")


def xlsx() -> bytes:
    """An Excel workbook with real dates and numbers."""
    wb = openpyxl.Workbook()
    ws = wb.active
    cols = ["Opportunity ID", "Opportunity Name", "Account ID", "Stage", "Opportunity Owner", "Lead Source",
            "Type", "Amount", "Created Date", "Close Date", "Forecast Category", "Probability (%)"]
    ws.append(cols)
    for d in DEALS:
        ws.append([d["opportunity_id"], d["opportunity_name"], d["account_id"], d["stage"], d["owner"],
                   d["source"], _SF_TYPE[str(d["type"])], d["amount"], d["created_at"], d["close_date"],
                   _SF_FORECAST[str(d["forecast_category"])], d["probability"]])
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # text that looks like a formula, as a user typed it with a leading quote
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def csv_bytes(rows: list[list[object]], **kwargs: object) -> bytes:
    """Rows as UTF-8 CSV bytes (helper for small hand-made files)."""
    return _csv(rows, **kwargs).encode("utf-8")  # type: ignore[arg-type]
