// The postgres sink's COPY encoding: the binary form of each type, byte for byte; the batches
// that fall back to the text format; walking the rows of either format. That the server reads
// these bytes as the values they were is tested against PostgreSQL itself in
// tests/integration/postgres_sink_test.cpp.
#include <catch2/catch.hpp>

#include "engine/batch.h"
#include "operators/sinks/postgres_copy.h"

using namespace sluice;

namespace {

std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

// A field of the binary format: the length, big-endian, then the bytes.
std::string FieldOf(const std::string& bytes) {
  const uint32_t n = static_cast<uint32_t>(bytes.size());
  return Bytes({static_cast<int>(n >> 24), static_cast<int>((n >> 16) & 0xff),
                static_cast<int>((n >> 8) & 0xff), static_cast<int>(n & 0xff)}) +
         bytes;
}
const std::string kNullField = Bytes({0xff, 0xff, 0xff, 0xff});

struct TestBatch {
  std::vector<Field> fields;
  std::vector<std::shared_ptr<Column>> columns;

  Column& Add(const std::string& name, TypeId type) {
    fields.push_back({name, type, true});
    columns.push_back(std::make_shared<Column>(type));
    return *columns.back();
  }
  Batch Make(size_t rows) const {
    return Batch(std::make_shared<const Schema>(fields),
                 std::vector<ColumnPtr>(columns.begin(), columns.end()), rows);
  }
};

int64_t Micros(const char* text) {
  auto t = ParseTimestamp(text);
  REQUIRE(t.ok());
  return *t;
}

}  // namespace

TEST_CASE("postgres COPY: each type's binary form, as PostgreSQL's recv functions read it",
          "[postgres][copy]") {
  TestBatch tb;
  Column& flag = tb.Add("flag", TypeId::kBool);
  Column& small = tb.Add("small", TypeId::kInt64);
  Column& medium = tb.Add("medium", TypeId::kInt64);
  Column& big = tb.Add("big", TypeId::kInt64);
  Column& as_double = tb.Add("as_double", TypeId::kInt64);
  Column& real = tb.Add("real", TypeId::kFloat64);
  Column& text = tb.Add("text", TypeId::kString);
  Column& doc = tb.Add("doc", TypeId::kString);
  Column& ts = tb.Add("ts", TypeId::kTimestamp);
  flag.AppendInt(1);
  small.AppendInt(-2);
  medium.AppendInt(70000);
  big.AppendInt(-9223372036854775807 - 1);
  as_double.AppendInt(3);
  real.AppendDouble(-0.5);
  text.AppendString(std::string("tab\there\n\\N\0x", 13));
  doc.AppendString("{}");
  ts.AppendInt(Micros("2000-01-01T00:00:01Z"));
  for (Column* c : {&flag, &small, &medium, &big, &as_double, &real, &text, &doc, &ts}) {
    c->AppendNull();
  }
  const Batch batch = tb.Make(2);
  PgCopyEncoder encoder({0, 1, 2, 3, 4, 5, 6, 7, 8},
                        {PgBinary::kBool, PgBinary::kInt2, PgBinary::kInt4, PgBinary::kInt8,
                         PgBinary::kInt8AsFloat8, PgBinary::kFloat8, PgBinary::kBytes,
                         PgBinary::kJsonb, PgBinary::kTimestamp});
  REQUIRE(encoder.binary());
  const std::string payload = encoder.Encode(batch);

  const std::string row0 =
      Bytes({0, 9}) + FieldOf(Bytes({1})) + FieldOf(Bytes({0xff, 0xfe})) +
      FieldOf(Bytes({0, 1, 0x11, 0x70})) + FieldOf(Bytes({0x80, 0, 0, 0, 0, 0, 0, 0})) +
      FieldOf(Bytes({0x40, 0x08, 0, 0, 0, 0, 0, 0})) +   // 3.0
      FieldOf(Bytes({0xbf, 0xe0, 0, 0, 0, 0, 0, 0})) +   // -0.5
      FieldOf(std::string("tab\there\n\\N\0x", 13)) +  // raw bytes: no escapes in binary
      FieldOf(Bytes({1}) + "{}") +                       // jsonb's version, then the text
      FieldOf(Bytes({0, 0, 0, 0, 0, 0x0f, 0x42, 0x40}));  // 1 s after 2000-01-01
  std::string row1 = Bytes({0, 9});
  for (int i = 0; i < 9; ++i) row1 += kNullField;
  CHECK(payload == "b" + row0 + row1);

  const PgCopyRows rows(payload);
  CHECK(rows.binary());
  CHECK(rows.RowEnd(0) == row0.size());
  CHECK(rows.RowEnd(row0.size()) == row0.size() + row1.size());
}

TEST_CASE(
    "postgres COPY: a batch with a value the binary form cannot carry as text would goes as "
    "text",
    "[postgres][copy]") {
  // The server then refuses the batch with its own message, and the row is found and
  // dead-lettered with it, as it always was.
  TestBatch tb;
  Column& id = tb.Add("id", TypeId::kInt64);
  Column& ts = tb.Add("ts", TypeId::kTimestamp);
  id.AppendInt(1);
  ts.AppendInt(0);
  SECTION("an int64 past an integer column's range") {
    id.AppendInt(int64_t{1} << 31);
    ts.AppendInt(0);
    const std::string payload =
        PgCopyEncoder({0, 1}, {PgBinary::kInt4, PgBinary::kTimestamp}).Encode(tb.Make(2));
    CHECK(payload ==
          "t1\t1970-01-01T00:00:00Z\n2147483648\t1970-01-01T00:00:00Z\n");
    const PgCopyRows rows(payload);
    CHECK_FALSE(rows.binary());
    CHECK(rows.RowEnd(0) == 23u);
    CHECK(rows.RowEnd(23) == rows.rows().size());
  }
  SECTION("an int64 past a smallint column's range") {
    id.AppendInt(-32769);
    ts.AppendInt(0);
    CHECK(PgCopyEncoder({0, 1}, {PgBinary::kInt2, PgBinary::kTimestamp}).Encode(tb.Make(2))[0] ==
          't');
    // The same values in an integer column fit.
    CHECK(PgCopyEncoder({0, 1}, {PgBinary::kInt4, PgBinary::kTimestamp}).Encode(tb.Make(2))[0] ==
          'b');
  }
  SECTION("a timestamp before PostgreSQL's first day, or so early the epoch shift overflows") {
    // PostgreSQL's first day is 4714-11-24 BC; its last, 294276 AD, lies past any int64 of
    // microseconds since 1970.
    constexpr int64_t kFirst = -211813488000000000 + 946684800000000;
    id.AppendInt(2);
    const int64_t ts_value = GENERATE(kFirst - 1, std::numeric_limits<int64_t>::min());
    ts.AppendInt(ts_value);
    CHECK(PgCopyEncoder({0, 1}, {PgBinary::kInt8, PgBinary::kTimestamp}).Encode(tb.Make(2))[0] ==
          't');
  }
  SECTION("PostgreSQL's first day, and the last int64, are binary") {
    id.AppendInt(2);
    const int64_t ts_value = GENERATE(int64_t{-211813488000000000} + 946684800000000,
                                      std::numeric_limits<int64_t>::max());
    ts.AppendInt(ts_value);
    CHECK(PgCopyEncoder({0, 1}, {PgBinary::kInt8, PgBinary::kTimestamp}).Encode(tb.Make(2))[0] ==
          'b');
  }
  SECTION("no binary forms: text throughout") {
    const PgCopyEncoder text({0, 1}, {});
    CHECK_FALSE(text.binary());
    CHECK(text.Encode(tb.Make(1)) == "t1\t1970-01-01T00:00:00Z\n");
  }
}

TEST_CASE("postgres COPY: which column types get the binary form", "[postgres][copy]") {
  CHECK(PgBinaryFor("integer", TypeId::kInt64) == PgBinary::kInt4);
  CHECK(PgBinaryFor("smallint", TypeId::kInt64) == PgBinary::kInt2);
  CHECK(PgBinaryFor("bigint", TypeId::kInt64) == PgBinary::kInt8);
  CHECK(PgBinaryFor("double precision", TypeId::kInt64) == PgBinary::kInt8AsFloat8);
  CHECK(PgBinaryFor("double precision", TypeId::kFloat64) == PgBinary::kFloat8);
  CHECK(PgBinaryFor("character varying", TypeId::kString) == PgBinary::kBytes);
  CHECK(PgBinaryFor("jsonb", TypeId::kString) == PgBinary::kJsonb);
  CHECK(PgBinaryFor("timestamp without time zone", TypeId::kTimestamp) == PgBinary::kTimestamp);
  CHECK(PgBinaryFor("timestamp with time zone", TypeId::kTimestamp) == PgBinary::kTimestamp);
  CHECK(PgBinaryFor("boolean", TypeId::kBool) == PgBinary::kBool);
  // Their binary forms are not the value's: numeric's digits, real's rounding and range, uuid.
  CHECK_FALSE(PgBinaryFor("numeric", TypeId::kInt64));
  CHECK_FALSE(PgBinaryFor("numeric", TypeId::kFloat64));
  CHECK_FALSE(PgBinaryFor("real", TypeId::kFloat64));
  CHECK_FALSE(PgBinaryFor("real", TypeId::kInt64));
  CHECK_FALSE(PgBinaryFor("uuid", TypeId::kString));
  // Every type a new table gets has one.
  for (TypeId t : {TypeId::kBool, TypeId::kInt64, TypeId::kFloat64, TypeId::kString,
                   TypeId::kTimestamp}) {
    CHECK(PgBinaryFor(PgTypeFor(t), t));
  }
}

TEST_CASE("postgres COPY: rows in the order of a key, each payload row naming its batch row",
          "[postgres][copy]") {
  TestBatch tb;
  Column& id = tb.Add("id", TypeId::kInt64);
  Column& name = tb.Add("name", TypeId::kString);
  // Keys 30, 10, 20, 10: the two rows of key 10 must keep their order (rows 1 then 3).
  for (auto [k, n] : {std::pair{30, "c"}, {10, "a"}, {20, "b"}, {10, "a2"}}) {
    id.AppendInt(k);
    name.AppendString(n);
  }
  const Batch batch = tb.Make(4);

  SECTION("text, by an integer key") {
    PgCopyEncoder encoder({0, 1}, {}, {0});
    CHECK(encoder.RowOrder(batch) == std::vector<uint32_t>{1, 3, 2, 0});
    const std::string payload = encoder.Encode(batch);
    REQUIRE(payload[0] == 'T');
    const PgCopyRows rows(payload);
    CHECK_FALSE(rows.binary());
    CHECK(rows.format() == 't');
    CHECK(rows.rows() == "10\ta\n10\ta2\n20\tb\n30\tc\n");
    std::vector<size_t> batch_rows;
    for (size_t i = 0; i < 4; ++i) batch_rows.push_back(rows.BatchRow(i));
    CHECK(batch_rows == std::vector<size_t>{1, 3, 2, 0});
  }
  SECTION("binary, by a string key") {
    PgCopyEncoder encoder({0, 1}, {PgBinary::kInt8, PgBinary::kBytes}, {1});
    const std::string payload = encoder.Encode(batch);
    REQUIRE(payload[0] == 'B');
    const PgCopyRows rows(payload);
    CHECK(rows.binary());
    CHECK(rows.format() == 'b');
    // a, a2, b, c: rows 1, 3, 2, 0; each row walks to the next.
    size_t start = 0;
    std::vector<size_t> batch_rows;
    for (size_t i = 0; i < 4; ++i) {
      batch_rows.push_back(rows.BatchRow(i));
      start = rows.RowEnd(start);
    }
    CHECK(start == rows.rows().size());
    CHECK(batch_rows == std::vector<size_t>{1, 3, 2, 0});
    // The rows are those of the unordered encoding, moved.
    const std::string plain = PgCopyEncoder({0, 1}, {PgBinary::kInt8, PgBinary::kBytes})
                                  .Encode(batch);
    const PgCopyRows unordered(plain);
    std::vector<std::string_view> each;
    for (size_t s = 0, e; s < unordered.rows().size(); s = e) {
      e = unordered.RowEnd(s);
      each.push_back(unordered.rows().substr(s, e - s));
    }
    REQUIRE(each.size() == 4u);
    CHECK(rows.rows() == std::string(each[1]) + std::string(each[3]) + std::string(each[2]) +
                             std::string(each[0]));
  }
  SECTION("by two keys, nulls first") {
    TestBatch two;
    Column& a = two.Add("a", TypeId::kInt64);
    Column& b = two.Add("b", TypeId::kFloat64);
    a.AppendInt(2);
    b.AppendDouble(0.5);
    a.AppendInt(1);
    b.AppendDouble(0.25);
    a.AppendInt(1);
    b.AppendNull();
    a.AppendNull();
    b.AppendDouble(9);
    CHECK(PgCopyEncoder({0, 1}, {}, {0, 1}).RowOrder(two.Make(4)) ==
          std::vector<uint32_t>{3, 2, 1, 0});
  }
  SECTION("rows already in order, or no key: the batch's order, no order block") {
    TestBatch sorted;
    Column& k = sorted.Add("k", TypeId::kTimestamp);
    for (int64_t v : {1, 1, 5, 9}) k.AppendInt(v);
    const PgCopyEncoder by_k({0}, {PgBinary::kTimestamp}, {0});
    CHECK(by_k.RowOrder(sorted.Make(4)).empty());
    CHECK(by_k.Encode(sorted.Make(4))[0] == 'b');
    CHECK(PgCopyEncoder({0, 1}, {}).Encode(batch)[0] == 't');
    const PgCopyRows rows(PgCopyEncoder({0, 1}, {}).Encode(batch));
    CHECK(rows.BatchRow(2) == 2u);
  }
}
