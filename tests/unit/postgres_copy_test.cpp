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
