"""Source formats: sniff a file, recognise its format from the header, and describe how its
fields map to the canonical schema.

Detection reads only the first few kilobytes. Headers are matched by *normalised* name
(lower-case, letters and digits only), never by position, so ``Purchase Amount (USD)``,
``purchase_amount`` and ``Purchase Amount`` all mean the same column.

Each :class:`SourceSpec` says, per canonical field, which raw column holds it and how to parse
it; the validator (``validate.py``) turns that into one SQL pass in DuckDB.
"""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from .errors import InputFileError, UsageError
from .schema import SOURCE_FIELDS

Format = Literal["kaggle", "cdnow", "mapped", "parquet"]
FORMATS: tuple[str, ...] = ("auto", "kaggle", "cdnow", "mapped")

SNIFF_BYTES = 64 * 1024
GZIP_CUT_SHORT = "unexpected end of data: the file is cut short"


def normalise(name: str) -> str:
    """``'Purchase Amount (USD)'`` → ``'purchaseamountusd'``."""
    return re.sub(r"[^0-9a-z]", "", name.strip().lstrip("\ufeff").lower())


#: Canonical field → accepted normalised header names (first match wins) for the Kaggle family.
KAGGLE_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": ("customerid", "customer", "custid", "clientid"),
    "purchase_id": ("purchaseid", "orderid", "transactionid", "invoiceid"),
    "purchase_date": ("purchasedate", "date", "orderdate", "transactiondate", "invoicedate"),
    "age": ("age",),
    "gender": ("gender", "sex"),
    "item": ("itempurchased", "item", "product"),
    "category": ("category", "productcategory"),
    "amount": ("purchaseamountusd", "purchaseamount", "amountusd", "amount"),
    "quantity": ("quantity", "qty", "units"),
    "state": ("location", "state"),
    "size": ("size",),
    "color": ("color", "colour"),
    "season": ("season",),
    "review_rating": ("reviewrating", "rating"),
    "subscription_status": ("subscriptionstatus", "subscription", "subscribed"),
    "payment_method": ("paymentmethod",),
    "shipping_type": ("shippingtype", "shipping"),
    "discount_applied": ("discountapplied", "discount"),
    "promo_code_used": ("promocodeused", "promocode"),
    "previous_purchases": ("previouspurchases",),
    "preferred_payment_method": ("preferredpaymentmethod",),
    "purchase_frequency": ("frequencyofpurchases", "purchasefrequency", "frequency"),
}

KAGGLE_REQUIRED = ("customer_id", "amount")
#: A header is "Kaggle" when it carries at least these (after normalisation).
KAGGLE_SIGNATURE = ("customer_id", "amount", "item", "category")

CDNOW_HEADER = ("customerid", "date", "numberofcds", "dollarvalue")


@dataclass(frozen=True)
class Sniff:
    """What the first bytes of a file say about it."""

    path: Path
    compression: Literal["none", "gzip"]
    #: ``utf-16`` is little-endian; UTF-16 text is transcoded to UTF-8 before reading
    encoding: Literal["utf-8", "utf-16", "utf-16-be", "latin-1"]
    bom: bool
    is_parquet: bool
    first_line: str
    sample_lines: list[str]
    #: True when the sample holds the whole file
    complete: bool = False
    #: 1-based physical line of the first non-blank line (the header, when there is one);
    #: blank lines before it are skipped by the readers
    header_line: int = 1


@dataclass
class SourceSpec:
    """How one file maps to the canonical schema."""

    format: Format
    path: Path
    sniff: Sniff
    #: delimited text: single-character delimiter; ``None`` means whitespace-separated fields
    delimiter: str | None = ","
    header: bool = True
    #: raw column names in file order (for whitespace formats, synthetic names)
    raw_columns: list[str] = field(default_factory=list)
    #: canonical field → raw column name (only fields present in the file)
    fields: dict[str, str] = field(default_factory=dict)
    #: strptime format of the date column
    date_format: str = "%Y-%m-%d"
    #: True when Customer ID identifies the row (one purchase per customer, Kaggle snapshot)
    one_row_per_customer: bool = False
    variant: str = ""
    notes: list[str] = field(default_factory=list)

    def column_label(self, canonical: str) -> str:
        """The name the user sees in their file for a canonical field."""
        return self.fields.get(canonical, canonical)


# --------------------------------------------------------------------------------------------
# sniffing


def sniff(path: Path) -> Sniff:
    """Read the first bytes of ``path`` and decide compression, encoding and first line."""
    if not path.exists():
        raise InputFileError(path, "file does not exist")
    if path.is_dir():
        raise InputFileError(path, "is a directory, not a file")
    if not path.is_file():
        # a FIFO or device would block or never end: only regular files are read
        raise InputFileError(path, "not a regular file (a pipe, socket or device)")
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise InputFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    if not head:
        raise InputFileError(path, "file is empty")
    compression: Literal["none", "gzip"] = "none"
    if head[:2] == b"\x1f\x8b":
        compression = "gzip"
        try:
            with gzip.open(path, "rb") as gz:
                head = gz.read(SNIFF_BYTES)
        except EOFError:
            raise InputFileError(path, f"gzip data is corrupt ({GZIP_CUT_SHORT})") from None
        except (OSError, zlib.error) as exc:
            raise InputFileError(path, f"gzip data is corrupt ({exc})") from None
        if not head:
            raise InputFileError(path, "file is empty (gzip holds no data)")
    if head[:4] == b"PAR1":
        return Sniff(path, compression, "utf-8", False, True, "", [])

    bom = False
    encoding: Literal["utf-8", "utf-16", "utf-16-be", "latin-1"]
    if head.startswith(codecs.BOM_UTF8):
        encoding, bom, text_bytes = "utf-8", True, head[3:]
    elif head.startswith(codecs.BOM_UTF16_LE):
        encoding, bom, text_bytes = "utf-16", True, head[2:]
    elif head.startswith(codecs.BOM_UTF16_BE):
        encoding, bom, text_bytes = "utf-16-be", True, head[2:]
    else:
        encoding, text_bytes = _utf16_without_bom(head) or "utf-8", head
    if encoding in ("utf-16", "utf-16-be"):
        codec = "utf-16-le" if encoding == "utf-16" else "utf-16-be"
        text = text_bytes[: len(text_bytes) // 2 * 2].decode(codec, errors="replace")
    else:
        try:
            # the sample may cut a multi-byte character at its end
            text = codecs.getincrementaldecoder("utf-8")().decode(text_bytes, final=False)
        except UnicodeDecodeError:
            encoding = "latin-1"
            text = text_bytes.decode("latin-1")
        if _looks_binary(text):
            raise InputFileError(path, "not delimited text (binary content)")
    lines = re.split(r"\r\n|\r|\n", text)
    complete = len(head) < SNIFF_BYTES
    if not complete and len(lines) > 1:
        lines = lines[:-1]  # last line may be cut by the sample
    header_line = next((i + 1 for i, ln in enumerate(lines) if ln.strip()), 0)
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        raise InputFileError(path, "file holds no data (only blank lines)")
    return Sniff(path, compression, encoding, bom, False, lines[0].lstrip("\ufeff"), lines[:50],
                 complete, header_line)


def _utf16_without_bom(head: bytes) -> Literal["utf-16", "utf-16-be"] | None:
    """UTF-16 text without a byte-order mark: mostly-ASCII text has a NUL in every second
    byte (odd positions for little-endian, even for big-endian)."""
    sample = head[:4096]
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.1 * len(even):
        return "utf-16"
    if even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.1 * len(odd):
        return "utf-16-be"
    return None


def _looks_binary(text: str) -> bool:
    sample = text[:4096]
    if not sample:
        return False
    bad = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\r\n\t") or ch == "\ufffd")
    return bad / len(sample) > 0.05


def normalised_copy(spec: SourceSpec, folder: Path, *, line_ends: bool = False) -> SourceSpec:
    """A copy of ``spec``'s file that DuckDB's CSV reader accepts, and the spec that reads it.

    The copy is uncompressed; UTF-16 text becomes UTF-8 (the reader knows only little-endian
    UTF-16, and no surrogate pairs such as emoji); other text keeps its bytes (so invalid
    bytes are still reported row by row). With ``line_ends`` every CR LF and lone CR becomes
    LF, for files that mix line-end styles (the reader's strict mode stops at the first
    change of style); a CR LF or CR inside a quoted value then becomes LF too. Lines keep
    their numbers. Streams in chunks.
    """
    sn = spec.sniff
    dest = folder / f"normalised-{len(list(folder.iterdir()))}.csv"
    utf16 = sn.encoding in ("utf-16", "utf-16-be")
    opener = gzip.open if sn.compression == "gzip" else open
    with opener(spec.path, "rb") as src, dest.open("wb") as out:
        if utf16:
            codec = "utf-16-le" if sn.encoding == "utf-16" else "utf-16-be"
            decoder = codecs.getincrementaldecoder(codec)()
            first, held = True, ""
            try:
                while chunk := src.read(SNIFF_BYTES * 16):
                    text = held + decoder.decode(chunk)
                    if first:
                        text, first = text.lstrip("\ufeff"), False
                    text, held = (text[:-1], "\r") if text.endswith("\r") else (text, "")
                    out.write((_lf(text) if line_ends else text).encode("utf-8"))
                rest = held + decoder.decode(b"", final=True)
                out.write((_lf(rest) if line_ends else rest).encode("utf-8"))
            except UnicodeDecodeError as exc:
                raise InputFileError(spec.path, f"not valid UTF-16 text ({exc.reason})") from None
        else:
            held_b = b""
            while chunk := src.read(SNIFF_BYTES * 16):
                data = held_b + chunk
                data, held_b = (data[:-1], b"\r") if data.endswith(b"\r") else (data, b"")
                out.write(data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                          if line_ends else data)
            out.write(held_b.replace(b"\r", b"\n") if line_ends else held_b)
    sniffed = dataclasses.replace(sn, path=dest, compression="none", bom=False,
                                  encoding="utf-8" if utf16 else sn.encoding)
    return dataclasses.replace(spec, path=dest, sniff=sniffed)


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --------------------------------------------------------------------------------------------
# detection


def detect(path: Path, fmt: str = "auto", mapping: Path | None = None) -> SourceSpec:
    """Recognise ``path`` and return its :class:`SourceSpec`.

    ``fmt`` forces a format (``kaggle``, ``cdnow``, ``mapped``); ``mapping`` is a YAML column
    mapping (implies ``mapped``).
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    sn = sniff(path)
    if mapping is not None or fmt == "mapped":
        if mapping is None:
            raise UsageError("--format mapped needs --mapping FILE")
        spec = _mapped_spec(sn, mapping)
        _require_data(spec)
        return spec
    if sn.is_parquet:
        return _parquet_spec(sn)
    if fmt == "cdnow" or (fmt == "auto" and _looks_cdnow(sn)):
        spec = _cdnow_spec(sn)
        _require_data(spec)
        return spec
    delim = _delimiter(sn.first_line)
    if delim is None:
        raise InputFileError(
            path, "not delimited text: no ',', ';', tab or '|' in the header line", line=1
        )
    header = _split_header(sn.first_line, delim)
    spec = _kaggle_spec(sn, delim, header, forced=fmt == "kaggle")
    _require_data(spec)
    return spec


def _require_data(spec: SourceSpec) -> None:
    if spec.header and spec.sniff.complete and len(spec.sniff.sample_lines) <= 1:
        raise InputFileError(spec.path, "file has a header but no data rows")


def _delimiter(line: str) -> str | None:
    counts = {d: line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else None


def _split_header(line: str, delim: str) -> list[str]:
    import csv

    return [h.strip() for h in next(csv.reader([line], delimiter=delim))]


def _looks_cdnow(sn: Sniff) -> bool:
    first = sn.first_line.split()
    if tuple(normalise(t) for t in first) == CDNOW_HEADER:
        return True
    rows = [ln.split() for ln in sn.sample_lines[:50]]
    good = sum(1 for r in rows if _cdnow_row(r))
    return bool(rows) and _cdnow_row(rows[0]) and good >= 0.6 * len(rows)


def _cdnow_row(tokens: list[str]) -> bool:
    if len(tokens) not in (4, 5):
        return False
    date_tok = tokens[-3]
    return bool(re.fullmatch(r"\d+", tokens[0]) and re.fullmatch(r"(19|20)\d{6}", date_tok))


def _cdnow_spec(sn: Sniff) -> SourceSpec:
    first = sn.first_line.split()
    header = tuple(normalise(t) for t in first) == CDNOW_HEADER
    data_rows = [ln.split() for ln in (sn.sample_lines[1:] if header else sn.sample_lines)]
    widths = [len(r) for r in data_rows if _cdnow_row(r)]
    width = max(set(widths), key=widths.count) if widths else 4
    if width == 5:
        raw = ["customer_id", "sample_id", "date", "number_of_cds", "dollar_value"]
        variant = "CDNOW_sample (customer id, sample id, date, CDs, dollars)"
    else:
        raw = ["customer_id", "date", "number_of_cds", "dollar_value"]
        variant = "CDNOW_master (customer id, date, CDs, dollars)"
    return SourceSpec(
        format="cdnow",
        path=sn.path,
        sniff=sn,
        delimiter=None,
        header=header,
        raw_columns=raw,
        fields={
            "customer_id": "customer_id",
            "purchase_date": "date",
            "quantity": "number_of_cds",
            "amount": "dollar_value",
        },
        date_format="%Y%m%d",
        variant=variant,
    )


def _match_fields(header: list[str], aliases: dict[str, tuple[str, ...]]) -> dict[str, str]:
    by_norm: dict[str, str] = {}
    for h in header:
        by_norm.setdefault(normalise(h), h)
    out: dict[str, str] = {}
    used: set[str] = set()
    for canonical, names in aliases.items():
        for n in names:
            if n in by_norm and by_norm[n] not in used:
                out[canonical] = by_norm[n]
                used.add(by_norm[n])
                break
    return out


def _kaggle_spec(sn: Sniff, delim: str, header: list[str], forced: bool) -> SourceSpec:
    path = sn.path
    norm = [normalise(h) for h in header]
    dupes = sorted({h for h, n in zip(header, norm, strict=True) if n and norm.count(n) > 1})
    if dupes:
        raise InputFileError(path, f"duplicated column(s) in header: {', '.join(dupes)}", line=1)
    if any(not n for n in norm):
        pos = norm.index("") + 1
        raise InputFileError(path, f"header has an empty column name at position {pos}", line=1)
    fields = _match_fields(header, KAGGLE_ALIASES)
    if not forced and not all(f in fields for f in KAGGLE_SIGNATURE):
        raise InputFileError(
            path,
            "no recognisable header: expected the customer shopping trends columns "
            "(Customer ID, Item Purchased, Category, Purchase Amount ...), a CDNOW log, "
            "or a column mapping (--mapping FILE)",
            line=1,
        )
    missing = [f for f in KAGGLE_REQUIRED if f not in fields]
    if missing:
        raise InputFileError(path, f"required column(s) missing: {', '.join(missing)}", line=1)
    notes: list[str] = []
    variant = "19-column"
    if "preferred_payment_method" not in fields and "payment_method" in fields:
        # The 18-column variant: its "Payment Method" is the customer's preferred method.
        fields["preferred_payment_method"] = fields.pop("payment_method")
        variant = "18-column"
        notes.append(
            "18-column variant: 'Payment Method' read as the customer's preferred method; "
            "per-purchase payment method is unknown"
        )
    extra = [h for h in header if h not in fields.values()]
    if extra:
        notes.append(f"ignored column(s): {', '.join(extra)}")
    dated = "purchase_date" in fields
    return SourceSpec(
        format="kaggle",
        path=path,
        sniff=sn,
        delimiter=delim,
        header=True,
        raw_columns=header,
        fields=fields,
        date_format="%Y-%m-%d",
        one_row_per_customer=not dated and "purchase_id" not in fields,
        variant=variant + (" with purchase dates" if dated else " snapshot"),
        notes=notes,
    )


def _parquet_spec(sn: Sniff) -> SourceSpec:
    import pyarrow.parquet as pq

    try:
        names = pq.ParquetFile(sn.path).schema_arrow.names
    except Exception as exc:  # noqa: BLE001 - any parquet failure means unusable input
        raise InputFileError(sn.path, f"unreadable Parquet file ({exc})") from None
    fields = _match_fields(names, KAGGLE_ALIASES)
    missing = [f for f in KAGGLE_REQUIRED if f not in fields]
    if missing:
        raise InputFileError(sn.path, f"required column(s) missing: {', '.join(missing)}")
    if "preferred_payment_method" not in fields and "payment_method" in fields:
        fields["preferred_payment_method"] = fields.pop("payment_method")
    dated = "purchase_date" in fields
    return SourceSpec(
        format="parquet",
        path=sn.path,
        sniff=sn,
        delimiter=None,
        header=True,
        raw_columns=list(names),
        fields=fields,
        one_row_per_customer=not dated and "purchase_id" not in fields,
        variant="parquet",
    )


def _mapped_spec(sn: Sniff, mapping: Path) -> SourceSpec:
    if not mapping.exists():
        raise UsageError(f"{mapping}: mapping file not found")
    try:
        doc = yaml.safe_load(mapping.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{mapping}: not valid YAML ({exc})") from None
    cols = doc.get("columns") if isinstance(doc, dict) else None
    if not isinstance(cols, dict) or not cols:
        raise UsageError(f"{mapping}: needs a 'columns:' mapping of canonical field → column")
    unknown = [k for k in cols if k not in SOURCE_FIELDS]
    if unknown:
        raise UsageError(
            f"{mapping}: unknown canonical field(s) {', '.join(unknown)}; "
            f"known: {', '.join(SOURCE_FIELDS)}"
        )
    delim = doc.get("delimiter") or _delimiter(sn.first_line)
    if delim is None or len(str(delim)) != 1:
        raise InputFileError(sn.path, "not delimited text: give 'delimiter:' in the mapping", line=1)
    header = _split_header(sn.first_line, delim)
    present = set(header)
    absent = [f"{v!r}" for v in cols.values() if v not in present]
    if absent:
        raise InputFileError(
            sn.path, f"column(s) named in {mapping.name} not in the header: {', '.join(absent)}",
            line=1,
        )
    fields = {str(k): str(v) for k, v in cols.items()}
    missing = [f for f in KAGGLE_REQUIRED if f not in fields]
    if missing:
        raise UsageError(f"{mapping}: required field(s) not mapped: {', '.join(missing)}")
    return SourceSpec(
        format="mapped",
        path=sn.path,
        sniff=sn,
        delimiter=delim,
        header=True,
        raw_columns=header,
        fields=fields,
        date_format=str(doc.get("date_format", "%Y-%m-%d")),
        one_row_per_customer=bool(doc.get("one_row_per_customer", False)),
        variant=f"mapping {mapping.name}",
    )
