"""Loaders: every format on small generated fixtures, the built-in ml-100k, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clusterneg.data import load_dataset
from clusterneg.data.load import detect_format
from clusterneg.errors import ConfigError, DataError

# --------------------------------------------------------------------------- fixture writers


def write(path: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "10\ta\t5\t300\n"
    "2\tb\t3\t100\n"
    "10\tb\t1\t200\n"
    "2\tc\t4\t50\n"
    "7\ta\t2\t10\n"
)
ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "a\tAlpha Movie\t1995\tAction Comedy\n"
    "b\tBeta\t1996\tDrama\n"
    "c\tGamma\t\tSci-Fi Film-Noir\n"
    "d\tNever Rated\t1990\tHorror\n"
)


def atomic_dir(tmp: Path, inter: str = INTER, item: str | None = ITEM) -> Path:
    d = tmp / "atomic"
    write(d / "toy.inter", inter)
    if item is not None:
        write(d / "toy.item", item)
    return d


LC_INTER = {"0": [3, 1, 2], "1": [2, 0], "2": [1]}
LC_ITEMS = {
    "0": {"title": "Stapler", "description": "", "brand": "Acme", "categories": "Office, Desk"},
    "1": {"title": "Pen", "brand": "Bic", "categories": ["Office", "Writing"]},
    "2": {"title": "Paper", "description": "A4 paper", "brand": None, "categories": "Paper"},
    "3": {"title": "Ink", "description": "Black ink", "brand": "HP", "categories": "Office"},
}


def lcrec_dir(tmp: Path, inter: object = LC_INTER, items: object = LC_ITEMS) -> Path:
    d = tmp / "lcrec"
    write(d / "Toy.inter.json", inter if isinstance(inter, str) else json.dumps(inter, indent=4))
    if items is not None:
        write(d / "Toy.item.json", items if isinstance(items, str) else json.dumps(items, indent=4))
    return d


RATINGS = "1::10::5::978300760\n1::20::3::978302109\n2::20::4::978301968\n2::30::1::978300275\n"
MOVIES = "10::Café Society (1999)::Comedy|Romance\n20::Heat (1995)::Action|Crime\n30::X (2000)::\n"


def ml1m_dir(tmp: Path, ratings: str = RATINGS, movies: str | None = MOVIES) -> Path:
    d = tmp / "ml1m"
    write(d / "ratings.dat", ratings, encoding="latin-1")
    if movies is not None:
        write(d / "movies.dat", movies, encoding="latin-1")
    return d


def table(path: Path, columns: dict[str, list]) -> Path:
    """Write ``columns`` as CSV (via pyarrow, so quoting is right) or Parquet by suffix."""
    tab = pa.table(columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        pq.write_table(tab, path)
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(tab, path)
    return path


INTER_COLS = {
    "user_id": ["u1", "u2", "u1", "u3", "u2"],
    "item_id": ["i1", "i2", "i3", "i1", "i1"],
    "timestamp": [5.0, 3.0, 9.0, 1.0, 4.0],
    "weight": [1.0, 2.0, 0.5, 1.0, 1.0],
}
ITEM_COLS = {"item_id": ["i1", "i2", "i3", "i4"], "title": ["One", "Two", "Three", "Four"],
             "genres": ["A|B", "B", "", "C"]}


def table_dir(tmp: Path, ext: str = ".csv", items: bool = True) -> Path:
    d = tmp / f"table{ext}"
    table(d / f"interactions{ext}", INTER_COLS)
    if items:
        table(d / f"items{ext}", ITEM_COLS)
    return d


def pairs(ds) -> set[tuple[str, str, float]]:
    """(raw user, raw item, order) triples: what the file said, independent of indexing."""
    inter = ds.interactions
    return {
        (str(ds.user_ids[u]), str(ds.catalog.item_ids[i]), float(o))
        for u, i, o in zip(inter.user, inter.item, inter.order, strict=True)
    }


def raises(fn, *args, **kw) -> DataError:
    with pytest.raises(DataError) as info:
        fn(*args, **kw)
    return info.value


# ------------------------------------------------------------------------------ happy paths


def test_recbole_atomic_files(tmp_path: Path) -> None:
    ds = load_dataset(atomic_dir(tmp_path))
    assert detect_format(tmp_path / "atomic")[0] == "recbole"
    assert ds.name == "toy"
    assert ds.user_ids.tolist() == ["2", "7", "10"]  # numeric ids in numeric order
    assert ds.catalog.item_ids.tolist() == ["a", "b", "c", "d"]  # unrated 'd' is kept
    assert pairs(ds) == {("10", "a", 300), ("2", "b", 100), ("10", "b", 200), ("2", "c", 50),
                         ("7", "a", 10)}
    assert np.all(ds.interactions.weight == 1.0)  # ratings kept as implicit feedback
    assert ds.catalog.fields["movie_title"] == ["Alpha Movie", "Beta", "Gamma", "Never Rated"]
    assert ds.catalog.fields["release_year"][2] == ""
    assert ds.catalog.category_field == "class"
    assert ds.catalog.categories() == [["Action", "Comedy"], ["Drama"], ["Sci-Fi", "Film-Noir"],
                                       ["Horror"]]


def test_recbole_min_rating_and_no_item_file(tmp_path: Path) -> None:
    ds = load_dataset(atomic_dir(tmp_path), min_rating=3)
    assert pairs(ds) == {("10", "a", 300), ("2", "b", 100), ("2", "c", 50)}
    assert ds.n_items == 4 and ds.n_users == 2
    bare = load_dataset(atomic_dir(tmp_path / "bare", item=None))
    assert bare.catalog.item_ids.tolist() == ["a", "b", "c"] and bare.catalog.fields == {}


def test_builtin_ml100k_from_recbole_wheel() -> None:
    ds = load_dataset("ml-100k")
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (943, 1682, 100000)
    assert ds.name == "ml-100k"
    item1 = ds.item_index()["1"]
    assert ds.catalog.fields["movie_title"][item1] == "Toy Story"
    assert ds.catalog.categories()[item1] == ["Animation", "Children's", "Comedy"]
    first = ds.user_index()["196"], ds.item_index()["242"]
    rows = np.flatnonzero((ds.interactions.user == first[0]) & (ds.interactions.item == first[1]))
    assert ds.interactions.order[rows].tolist() == [881250949.0]
    assert ds.interactions.has_order
    assert np.bincount(ds.interactions.user).min() == 20  # ml-100k: every user rated >= 20


def test_lcrec_json(tmp_path: Path) -> None:
    ds = load_dataset(lcrec_dir(tmp_path))
    assert ds.name == "lcrec" and detect_format(tmp_path / "lcrec")[0] == "lcrec"
    assert pairs(ds) == {("0", "3", 0), ("0", "1", 1), ("0", "2", 2), ("1", "2", 0),
                         ("1", "0", 1), ("2", "1", 0)}
    f = ds.catalog.fields
    assert f["description"] == ["", "", "A4 paper", "Black ink"]  # missing key -> ""
    assert f["brand"] == ["Acme", "Bic", "", "HP"]  # null -> ""
    assert f["categories"][1] == "Office, Writing"  # list joined
    assert ds.catalog.category_field == "categories"
    assert ds.catalog.categories()[0] == ["Office", "Desk"]


def test_lcrec_without_item_file(tmp_path: Path) -> None:
    ds = load_dataset(lcrec_dir(tmp_path, items=None))
    assert ds.catalog.item_ids.tolist() == ["0", "1", "2", "3"] and ds.catalog.fields == {}


def test_movielens_dat_latin1(tmp_path: Path) -> None:
    ds = load_dataset(ml1m_dir(tmp_path))
    assert detect_format(tmp_path / "ml1m")[0] == "movielens"
    assert ds.catalog.fields["title"][0] == "Café Society (1999)"
    assert ds.catalog.fields["genres"] == ["Comedy, Romance", "Action, Crime", ""]
    assert ds.catalog.categories() == [["Comedy", "Romance"], ["Action", "Crime"], []]
    assert ("1", "10", 978300760.0) in pairs(ds) and len(ds.interactions) == 4
    assert len(load_dataset(ml1m_dir(tmp_path / "r"), min_rating=4).interactions) == 2


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_tables(tmp_path: Path, ext: str) -> None:
    ds = load_dataset(table_dir(tmp_path, ext))
    assert detect_format(tmp_path / f"table{ext}")[0] == "table"
    assert ds.user_ids.tolist() == ["u1", "u2", "u3"]
    assert ds.catalog.item_ids.tolist() == ["i1", "i2", "i3", "i4"]
    assert pairs(ds) == {("u1", "i1", 5), ("u2", "i2", 3), ("u1", "i3", 9), ("u3", "i1", 1),
                         ("u2", "i1", 4)}
    w = {(str(ds.user_ids[u]), str(ds.catalog.item_ids[i])): float(x) for u, i, x in
         zip(ds.interactions.user, ds.interactions.item, ds.interactions.weight, strict=True)}
    assert w[("u2", "i2")] == 2.0 and w[("u1", "i3")] == 0.5
    assert ds.catalog.category_field == "genres"
    assert ds.catalog.categories() == [["A", "B"], ["B"], [], ["C"]]


def test_table_without_items_and_dates(tmp_path: Path) -> None:
    d = tmp_path / "t"
    table(d / "interactions.csv", {"user_id": [1, 1, 2], "item_id": [30, 4, 4],
                                   "timestamp": ["2020-01-02", "2020-01-01", "2021-06-30"]})
    ds = load_dataset(d)
    assert ds.catalog.item_ids.tolist() == ["4", "30"] and ds.catalog.fields == {}
    assert pairs(ds) == {("1", "30", 1577923200.0), ("1", "4", 1577836800.0),
                         ("2", "4", 1625011200.0)}
    assert np.all(ds.interactions.weight == 1.0)


def test_table_parquet_native_types(tmp_path: Path) -> None:
    d = tmp_path / "p"
    ts = pa.array([1_000_000, 2_000_000], pa.timestamp("ms"))
    pq.write_table(pa.table({"user_id": [7, 8], "item_id": [1, 2], "timestamp": ts}),
                   d.mkdir() or d / "interactions.parquet")
    ds = load_dataset(d)
    assert pairs(ds) == {("7", "1", 1000.0), ("8", "2", 2000.0)}


def test_csv_quoted_newline_in_items(tmp_path: Path) -> None:
    d = tmp_path / "q"
    table(d / "interactions.csv", {"user_id": ["u"], "item_id": ["i1"]})
    write(d / "items.csv", 'item_id,description\ni1,"two\nlines, and a comma"\ni2,plain\n')
    ds = load_dataset(d)
    assert ds.catalog.fields["description"] == ["two\nlines, and a comma", "plain"]


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_presplit_tables(tmp_path: Path, ext: str) -> None:
    d = tmp_path / "split"
    table(d / f"train{ext}", {"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"]})
    table(d / f"test{ext}", {"user_id": ["a", "b"], "item_id": ["z", "y"]})
    table(d / f"valid{ext}", {"user_id": ["b"], "item_id": ["z"]})
    ds = load_dataset(d)
    assert detect_format(d)[0] == "presplit"
    assert set(ds.presplit) == {"train", "valid", "test"}
    assert ds.catalog.item_ids.tolist() == ["x", "y", "z"]  # indexed jointly over the parts
    test = ds.presplit["test"]
    got = {(str(ds.user_ids[u]), str(ds.catalog.item_ids[i])) for u, i in
           zip(test.user, test.item, strict=True)}
    assert got == {("a", "z"), ("b", "y")}
    assert len(ds.interactions) == 6 and not ds.interactions.has_order


def test_ids_map_back(tmp_path: Path) -> None:
    ds = load_dataset(atomic_dir(tmp_path))
    u, i = ds.interactions.user, ds.interactions.item
    assert u.min() == 0 and u.max() == ds.n_users - 1 and len(np.unique(u)) == ds.n_users
    assert ds.user_index()[str(ds.user_ids[u[0]])] == u[0]
    assert ds.item_index()[str(ds.catalog.item_ids[i[0]])] == i[0]


def test_loaders_write_nothing(tmp_path: Path) -> None:
    dirs = [atomic_dir(tmp_path), lcrec_dir(tmp_path), ml1m_dir(tmp_path), table_dir(tmp_path)]
    write(tmp_path / "bad" / "interactions.csv", "user_id\nu1\n")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    for d in dirs:
        load_dataset(d)
    with pytest.raises(DataError):
        load_dataset(tmp_path / "bad")
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


# ------------------------------------------------------------------------------- bad input


def check(err: DataError, path: Path, line: int | None, field: str | None, *words: str) -> None:
    assert err.path == str(path)
    assert err.line == line
    assert err.field == field
    for w in words:
        assert w in str(err), str(err)


def test_no_such_dataset_and_unknown_format(tmp_path: Path) -> None:
    err = raises(load_dataset, tmp_path / "nope")
    assert "no such directory" in str(err) and "ml-100k" in str(err)
    (tmp_path / "junk").mkdir()
    write(tmp_path / "junk" / "readme.txt", "hi")
    err = raises(load_dataset, tmp_path / "junk")
    for marker in (".inter.json", ".inter", "ratings.dat", "interactions.{csv,parquet}", "train"):
        assert marker in str(err)
    err = raises(load_dataset, tmp_path / "junk" / "readme.txt")
    assert "expected a directory" in str(err)


def test_missing_column(tmp_path: Path) -> None:
    d = atomic_dir(tmp_path, inter="user_id:token\ttimestamp:float\n1\t5\n")
    check(raises(load_dataset, d), d / "toy.inter", 1, "item_id", "missing column")
    d = tmp_path / "csv"
    write(d / "interactions.csv", "user_id,ts\nu,1\n")
    check(raises(load_dataset, d), d / "interactions.csv", 1, "item_id", "missing column")
    d = tmp_path / "pq"
    table(d / "interactions.parquet", {"item_id": ["i"]})
    check(raises(load_dataset, d), d / "interactions.parquet", None, "user_id", "missing column")


def test_unparsable_numbers(tmp_path: Path) -> None:
    bad = INTER.replace("\t200\n", "\tlater\n")
    d = atomic_dir(tmp_path, inter=bad)
    check(raises(load_dataset, d), d / "toy.inter", 4, "timestamp", "expected a finite number",
          "'later'")
    d = tmp_path / "csv"
    write(d / "interactions.csv", "user_id,item_id,weight\nu,i,1\n\nu,j,heavy\n")
    check(raises(load_dataset, d), d / "interactions.csv", 4, "weight", "'heavy'")
    d = ml1m_dir(tmp_path, ratings=RATINGS + "3::10::4::noon\n")
    check(raises(load_dataset, d), d / "ratings.dat", 5, "timestamp", "'noon'")
    d = tmp_path / "pq"
    table(d / "interactions.parquet", {"user_id": ["u", "v"], "item_id": ["i", "j"],
                                       "weight": ["1", "x"]})
    check(raises(load_dataset, d), d / "interactions.parquet", None, "weight", "row 2", "'x'")


def test_wrong_number_of_fields(tmp_path: Path) -> None:
    d = atomic_dir(tmp_path, inter=INTER + "3\tb\t4\n")
    check(raises(load_dataset, d), d / "toy.inter", 7, None, "expected 4 fields", "got 3")
    d = ml1m_dir(tmp_path, ratings=RATINGS.replace("2::20::4::978301968", "2::20::4"))
    check(raises(load_dataset, d), d / "ratings.dat", 3, None, "expected 4 fields")
    d = tmp_path / "csv"
    write(d / "interactions.csv", "user_id,item_id\nu,i\nu,j,extra\n")
    check(raises(load_dataset, d), d / "interactions.csv", 3, None, "expected 2", "got 3")


def test_unknown_item(tmp_path: Path) -> None:
    d = atomic_dir(tmp_path, inter=INTER + "3\tzzz\t4\t1\n")
    check(raises(load_dataset, d), d / "toy.inter", 7, "item_id", "unknown item id 'zzz'",
          "toy.item")
    d = lcrec_dir(tmp_path, inter={"0": [1], "1": [2, 99]})
    err = raises(load_dataset, d)
    check(err, d / "Toy.inter.json", 5, "item", "unknown item id '99'", "Toy.item.json")
    d = ml1m_dir(tmp_path, ratings=RATINGS + "9::77::3::1\n")
    check(raises(load_dataset, d), d / "ratings.dat", 5, "item_id", "'77'", "movies.dat")
    d = table_dir(tmp_path)
    write(d / "interactions.csv", "user_id,item_id\nu,i1\nu,nope\n")
    check(raises(load_dataset, d), d / "interactions.csv", 3, "item_id", "'nope'", "items.csv")


def test_empty_files(tmp_path: Path) -> None:
    d = atomic_dir(tmp_path, inter="")
    check(raises(load_dataset, d), d / "toy.inter", None, None, "empty file")
    d = atomic_dir(tmp_path / "h", inter=INTER.split("\n")[0] + "\n")
    check(raises(load_dataset, d), d / "toy.inter", 1, None, "empty file")
    d = atomic_dir(tmp_path / "i", item="")
    check(raises(load_dataset, d), d / "toy.item", None, None, "empty file")
    d = lcrec_dir(tmp_path, inter="{}")
    check(raises(load_dataset, d), d / "Toy.inter.json", None, None, "non-empty JSON object")
    d = lcrec_dir(tmp_path / "z", inter="  \n")
    check(raises(load_dataset, d), d / "Toy.inter.json", None, None, "empty file")
    d = ml1m_dir(tmp_path, ratings="\n")
    check(raises(load_dataset, d), d / "ratings.dat", None, None, "empty file")
    d = tmp_path / "csv"
    write(d / "interactions.csv", "")
    check(raises(load_dataset, d), d / "interactions.csv", None, None, "empty file")
    write(d / "interactions.csv", "user_id,item_id\n")
    check(raises(load_dataset, d), d / "interactions.csv", None, None, "empty file")


def test_duplicate_item_ids(tmp_path: Path) -> None:
    d = atomic_dir(tmp_path, item=ITEM + "b\tBeta again\t1997\tDrama\n")
    check(raises(load_dataset, d), d / "toy.item", 6, "item_id", "duplicate item id 'b'",
          "line 3")
    d = lcrec_dir(tmp_path, items='{\n "0": {"title": "a"},\n "0": {"title": "b"}\n}')
    check(raises(load_dataset, d), d / "Toy.item.json", 3, "0", "duplicate key")
    d = ml1m_dir(tmp_path, movies=MOVIES + "20::Heat again (1995)::Action\n")
    check(raises(load_dataset, d), d / "movies.dat", 4, "item_id", "duplicate item id '20'")
    d = tmp_path / "pq"
    table(d / "interactions.parquet", {"user_id": ["u"], "item_id": ["i1"]})
    table(d / "items.parquet", {"item_id": ["i1", "i2", "i1"]})
    check(raises(load_dataset, d), d / "items.parquet", None, "item_id", "row 3", "row 1")


def test_non_utf8_text(tmp_path: Path) -> None:
    d = atomic_dir(tmp_path, item=ITEM.replace("Beta", "B\xe9ta").encode("latin-1"))
    check(raises(load_dataset, d), d / "toy.item", 3, None, "not valid utf-8", "column 4")
    d = lcrec_dir(tmp_path)
    write(d / "Toy.item.json", json.dumps(LC_ITEMS, indent=1).replace("Pen", "P\xe9n"),
          encoding="latin-1")
    err = raises(load_dataset, d)
    assert err.path == str(d / "Toy.item.json") and err.line == 9 and "utf-8" in str(err)
    d = tmp_path / "csv"
    write(d / "interactions.csv", b"user_id,item_id\nu,i\nu,\xff\n")
    check(raises(load_dataset, d), d / "interactions.csv", 3, None, "not valid utf-8")
    d = tmp_path / "pq"
    table(d / "interactions.parquet", {"user_id": ["u", "v"], "item_id": ["i", "j"]})
    pq.write_table(pa.table({"item_id": pa.array([b"i", b"\xffj"], pa.binary())}),
                   d / "items.parquet")
    check(raises(load_dataset, d), d / "items.parquet", None, "item_id", "row 2", "UTF-8")


def test_invalid_json_and_shapes(tmp_path: Path) -> None:
    d = lcrec_dir(tmp_path, inter='{\n  "0": [1, 2,\n  "1": [3]\n}')
    check(raises(load_dataset, d), d / "Toy.inter.json", 3, None, "invalid JSON")
    d = lcrec_dir(tmp_path / "s", inter={"0": [1], "1": "2"})
    check(raises(load_dataset, d), d / "Toy.inter.json", 5, "1", "list of item ids")


def test_empty_id(tmp_path: Path) -> None:
    d = tmp_path / "csv"
    write(d / "interactions.csv", "user_id,item_id\nu,i\n,j\n")
    check(raises(load_dataset, d), d / "interactions.csv", 3, "user_id", "empty id")


def test_min_rating_without_ratings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="min_rating"):
        load_dataset(lcrec_dir(tmp_path), min_rating=3)
    with pytest.raises(ConfigError, match="rating"):
        load_dataset(table_dir(tmp_path), min_rating=3)


def test_csv_with_bom_and_crlf(tmp_path: Path) -> None:
    d = tmp_path / "bom"
    write(d / "interactions.csv", b"\xef\xbb\xbfuser_id,item_id,timestamp\r\nu,i,1\r\nv,i,2\r\n")
    ds = load_dataset(d)
    assert pairs(ds) == {("u", "i", 1.0), ("v", "i", 2.0)}
    a = atomic_dir(tmp_path, inter=INTER.replace("\n", "\r\n"), item=ITEM.replace("\n", "\r\n"))
    assert pairs(load_dataset(a)) == pairs(load_dataset(atomic_dir(tmp_path / "lf")))


def test_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    lines = INTER.split("\n")
    spaced = "\n".join(lines[:3] + ["", "   "] + lines[3:])  # blank lines after line 3
    assert pairs(load_dataset(atomic_dir(tmp_path / "a", inter=spaced))) == pairs(
        load_dataset(atomic_dir(tmp_path / "b"))
    )
    bad = spaced.replace("\t200", "\tnoon")  # was line 4, now line 6
    d = atomic_dir(tmp_path / "c", inter=bad)
    check(raises(load_dataset, d), d / "toy.inter", 6, "timestamp", "'noon'")


def test_fast_and_fallback_parsers_agree(tmp_path: Path) -> None:
    from clusterneg.data.loaders import _read

    text = "1::Café (1999)::A|B\n2::Tab\there::\n3::a:b::C\n"
    names = ["item_id", "title", "genres"]
    fast = _read._arrow_columns(text, "::", names)  # pyarrow path, no fallback
    assert fast is not None
    _, at = _read.read_delimited(tmp_path / "m.dat", text, "::", names)
    rows, _ = _read.split_rows(tmp_path / "m.dat", text, "::", 3)
    slow = _read.columns(rows, names)
    for n in names:
        assert fast[n].tolist() == slow[n].tolist()
    assert fast["title"].tolist() == ["Café (1999)", "Tab\there", "a:b"]
    assert at.line_no.tolist() == [1, 2, 3]
