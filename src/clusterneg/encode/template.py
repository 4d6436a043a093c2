"""Per-dataset text templates: which item fields an encoder reads, in which order, how long.

An item's content becomes one string (PAPER.md, "LLM item representations": the LLM encodes
each item's content). A :class:`TextTemplate` lists fields by *candidate names* (the first
name present in the catalog is used, so ``movie_title`` and ``title`` both work), an optional
prefix per field ("Brand: ...") and an optional per-field token budget; the whole string is
then cut to the model's maximum length *in tokens*, at a token boundary of the original text.
Truncating before hashing means the embedding cache keys on exactly the text the model sees:
an edit beyond the cut re-encodes nothing.

Built-in profiles (:data:`PROFILES`), chosen by :func:`default_template` from the fields a
catalog has:

- ``movies`` (ml-100k, MovieLens): title, year, genres -> ``"Toy Story. Year: 1995. Genres:
  Animation, Children's, Comedy"``;
- ``products`` (Amazon / LC-Rec): title, brand, categories, description (description last and
  capped at 160 tokens, since it is long and least specific);
- otherwise every field in catalog order.

References:
    Ji et al., arXiv 2607.00448, section "Method", step 1 (LLM item representations).

Example:
    >>> import numpy as np
    >>> cat = Catalog(np.array(["1"]), {"movie_title": ["Heat"], "release_year": ["1995"]})
    >>> default_template(cat).render(cat)
    ['Heat. Year: 1995']
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clusterneg.data.dataset import Catalog
from clusterneg.errors import ConfigError

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class FieldSpec:
    """One field of a template.

    Args:
        names: candidate field names; the first one the catalog has is used.
        prefix: text put before the value (e.g. ``"Brand: "``); nothing for an empty value.
        max_tokens: cap on this field's length in tokens (None: only the overall cap).
        front_article: move a trailing article to the front (MovieLens writes "Game, The").
    """

    names: tuple[str, ...]
    prefix: str = ""
    max_tokens: int | None = None
    front_article: bool = False

    def resolve(self, catalog: Catalog) -> str | None:
        """The catalog field this spec reads, or None when the catalog has none of them."""
        return next((n for n in self.names if n in catalog.fields), None)


@dataclass(frozen=True)
class TextTemplate:
    """Which fields make an item's text, in order, joined by ``sep``.

    Args:
        fields: the field specs, in output order.
        sep: separator between non-empty fields.
        name: profile name (for logs and run metadata).
    """

    fields: tuple[FieldSpec, ...]
    sep: str = ". "
    name: str = "custom"

    @staticmethod
    def from_names(names: Sequence[str], sep: str = ". ") -> TextTemplate:
        """A plain template: these fields, no prefixes, no per-field caps."""
        return TextTemplate(tuple(FieldSpec((n,)) for n in names), sep=sep)

    def used_fields(self, catalog: Catalog) -> list[str]:
        """The catalog field names this template reads, in order."""
        return [f for f in (s.resolve(catalog) for s in self.fields) if f is not None]

    def render(
        self, catalog: Catalog, tokenizer: Any | None = None, max_length: int | None = None
    ) -> list[str]:
        """One string per item, each at most ``max_length`` tokens.

        Args:
            catalog: the items (``n_items`` strings come back, in item-index order).
            tokenizer: a ``tokenizers.Tokenizer`` (fast, with offsets) used to count tokens;
                None skips every token cap.
            max_length: overall cap in tokens, special tokens excluded (None: no cap).

        Returns:
            list of ``n_items`` strings (empty string for an item with no text).
        """
        used = [(s, s.resolve(catalog)) for s in self.fields]
        if all(name is None for _, name in used):
            raise ConfigError(f"template {self.name!r} reads fields "
                              f"{[s.names for s in self.fields]}, catalog has "
                              f"{sorted(catalog.fields)}")
        columns = []
        for spec, name in used:
            if name is None:
                continue
            values = [clean_text(v) for v in catalog.fields[name]]
            if spec.front_article:
                values = [front_article(v) for v in values]
            if spec.max_tokens is not None and tokenizer is not None:
                values = truncate_tokens(values, tokenizer, spec.max_tokens)
            columns.append([spec.prefix + v if v else "" for v in values])
        texts = [self.sep.join(p for p in parts if p) for parts in zip(*columns, strict=True)]
        if max_length is not None and tokenizer is not None:
            texts = truncate_tokens(texts, tokenizer, max_length)
        return texts


def clean_text(value: object) -> str:
    """HTML entities decoded (``AT&amp;T`` -> ``AT&T``), whitespace collapsed, '|' -> ', '."""
    text = html.unescape(str(value)).replace("|", ", ")
    return _SPACE.sub(" ", text).strip()


_ARTICLE = re.compile(r"^(.+), (The|A|An|Les|La|Le|Il|Das|Die|Der|El|L')( \(.*\))?$")


def front_article(title: str) -> str:
    """``"Usual Suspects, The"`` -> ``"The Usual Suspects"`` (MovieLens title convention)."""
    m = _ARTICLE.match(title)
    if m is None:
        return title
    sep = "" if m.group(2).endswith("'") else " "
    return f"{m.group(2)}{sep}{m.group(1)}{m.group(3) or ''}"


def title_texts(catalog: Catalog) -> list[str] | None:
    """Each item's title (cleaned), or None when the catalog has no title-like field."""
    name = FieldSpec(_TITLE).resolve(catalog)
    if name is None:
        return None
    return [front_article(clean_text(v)) for v in catalog.fields[name]]


def item_titles(catalog: Catalog) -> list[str]:
    """What tables and reports call each item: its title (:func:`title_texts`), else its raw
    id.

    Example:
        >>> import numpy as np
        >>> item_titles(Catalog(np.array(["7"]), {"movie_title": ["Usual Suspects, The"]}))
        ['The Usual Suspects']
        >>> item_titles(Catalog(np.array(["7"]), {}))
        ['7']
    """
    return title_texts(catalog) or [str(i) for i in catalog.item_ids]


def truncate_tokens(texts: list[str], tokenizer: Any, max_tokens: int) -> list[str]:
    """Cut each text after its first ``max_tokens`` tokens, at the character where the next
    token starts, so the kept part is the original text (no detokenisation artefacts).

    Args:
        texts: strings to cut.
        tokenizer: a ``tokenizers.Tokenizer`` (offsets are character spans in the input).
        max_tokens: tokens kept per text, special tokens not counted.
    """
    if max_tokens <= 0:
        raise ConfigError(f"max_tokens must be positive, got {max_tokens}")
    encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
    out = []
    for text, enc in zip(texts, encodings, strict=True):
        offsets = enc.offsets
        out.append(text if len(offsets) <= max_tokens else text[: offsets[max_tokens][0]].rstrip())
    return out


_TITLE = ("title", "movie_title", "name", "item_name")
_CATS = ("categories", "category", "genres", "genre", "class")

#: Built-in templates, by profile name.
PROFILES: dict[str, TextTemplate] = {
    "movies": TextTemplate(
        (FieldSpec(_TITLE, front_article=True), FieldSpec(("release_year", "year"), "Year: "),
         FieldSpec(_CATS, "Genres: ")),
        name="movies",
    ),
    "products": TextTemplate(
        (FieldSpec(_TITLE), FieldSpec(("brand",), "Brand: "),
         FieldSpec(_CATS, "Category: "), FieldSpec(("description",), "", max_tokens=160)),
        name="products",
    ),
}


#: (profile, marker fields): the first profile with any marker field present is the default.
_RULES = (("products", ("description", "brand")),
          ("movies", ("movie_title", "release_year", "genres", "class")))


def default_template(catalog: Catalog) -> TextTemplate:
    """The built-in profile whose marker fields the catalog has, else all fields in order."""
    for profile, markers in _RULES:
        if any(m in catalog.fields for m in markers):
            return PROFILES[profile]
    if not catalog.fields:
        raise ConfigError("the catalog has no text fields: nothing to encode "
                          "(use precomputed:PATH embeddings, or add an items file)")
    return TextTemplate.from_names(list(catalog.fields))


def template_from_spec(spec: str | Sequence[str] | TextTemplate | None,
                       catalog: Catalog) -> TextTemplate:
    """``None``/"auto" -> :func:`default_template`; a profile name; "f1,f2" or a list of
    field names -> a plain template; a :class:`TextTemplate` as is."""
    if isinstance(spec, TextTemplate):
        return spec
    if spec is None or spec == "auto":
        return default_template(catalog)
    if isinstance(spec, str):
        if spec in PROFILES:
            return PROFILES[spec]
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    missing = [n for n in spec if n not in catalog.fields]
    if missing:
        raise ConfigError(f"template fields {missing} not in the catalog "
                          f"(fields: {sorted(catalog.fields)}; profiles: {sorted(PROFILES)})")
    return TextTemplate.from_names(list(spec))


__all__ = ["FieldSpec", "PROFILES", "TextTemplate", "clean_text", "default_template",
           "front_article", "item_titles", "template_from_spec", "title_texts",
           "truncate_tokens"]
