// The JSON writer: escaping that always yields valid JSON (even from invalid UTF-8), doubles
// that read back exactly, NaN as null, and cells and rows in schema order.
#include <bit>
#include <cmath>
#include <cstdlib>
#include <limits>

#include <simdjson.h>
#include <catch2/catch.hpp>

#include "engine/json.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

std::string Str(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

std::string Dbl(double v) {
  std::string out;
  AppendJsonDouble(out, v);
  return out;
}

// Parses `json` as a JSON string value with simdjson; fails the test when it is not one.
std::string ParseString(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element e;
  auto err = parser.parse(padded).get(e);
  INFO(json);
  REQUIRE_FALSE(err);
  std::string_view s;
  REQUIRE_FALSE(e.get_string().get(s));
  return std::string(s);
}

}  // namespace

TEST_CASE("strings: quotes, backslashes and control characters are escaped", "[json]") {
  CHECK(Str("plain") == R"("plain")");
  CHECK(Str("") == R"("")");
  CHECK(Str(R"(say "hi")") == R"("say \"hi\"")");
  CHECK(Str(R"(C:\dir)") == R"("C:\\dir")");
  CHECK(Str("a\nb\rc\td") == R"("a\nb\rc\td")");
  CHECK(Str(std::string("nul\0x", 5)) == R"("nul\u0000x")");
  CHECK(Str("\x01\x1f") == R"("\u0001\u001f")");
  CHECK(Str("\x7f") == "\"\x7f\"");  // DEL needs no escape in JSON
  // Valid UTF-8 is written as is.
  CHECK(Str("caf\xc3\xa9 \xe2\x82\xac") == "\"caf\xc3\xa9 \xe2\x82\xac\"");
  for (const std::string& s : {std::string("say \"hi\"\\\n\t\x01"), std::string("caf\xc3\xa9")}) {
    CHECK(ParseString(Str(s)) == s);
  }
}

TEST_CASE("strings: invalid UTF-8 bytes become \\u00XX and the output stays valid JSON", "[json]") {
  const std::string bad = "ab\xff\xfe\"c";
  const std::string json = Str(bad);
  CHECK(json == R"("ab\u00ff\u00fe\"c")");
  CHECK(simdjson::validate_utf8(json.data(), json.size()));
  // Each byte reads back as the code point of the same value: no byte is lost.
  CHECK(ParseString(json) == "ab\xc3\xbf\xc3\xbe\"c");
  // A truncated multi-byte sequence at the end.
  const std::string truncated = Str("x\xe2\x82");
  CHECK(truncated == R"("x\u00e2\u0082")");
  ParseString(truncated);
}

TEST_CASE("doubles: the shortest text that reads back as the same value", "[json]") {
  const double values[] = {
      0.1,           1.0 / 3.0, 1e300, -1e-300, 5e-324, std::numeric_limits<double>::max(),
      123456789.125, -2.5,      1e21,  0.0};
  for (double v : values) {
    const std::string text = Dbl(v);
    INFO(text);
    char* end = nullptr;
    const double back = std::strtod(text.c_str(), &end);
    CHECK(end == text.c_str() + text.size());
    CHECK(std::bit_cast<uint64_t>(back) == std::bit_cast<uint64_t>(v));  // bit for bit
    // And it is a JSON number simdjson reads to the same value.
    simdjson::dom::parser parser;
    simdjson::padded_string padded(text);
    simdjson::dom::element e;
    REQUIRE_FALSE(parser.parse(padded).get(e));
    double d = 0;
    REQUIRE_FALSE(e.get_double().get(d));
    CHECK(d == v);
  }
  CHECK(Dbl(0.1) == "0.1");
  CHECK(Dbl(1e300) == "1e+300");
  CHECK(Dbl(-2.5) == "-2.5");
  // Negative zero keeps its sign.
  const std::string negzero = Dbl(-0.0);
  CHECK(negzero == "-0");
  CHECK(std::signbit(std::strtod(negzero.c_str(), nullptr)));
}

TEST_CASE("doubles: NaN and infinities are null", "[json]") {
  CHECK(Dbl(std::numeric_limits<double>::quiet_NaN()) == "null");
  CHECK(Dbl(std::numeric_limits<double>::infinity()) == "null");
  CHECK(Dbl(-std::numeric_limits<double>::infinity()) == "null");
  std::string i;
  AppendJsonInt(i, std::numeric_limits<int64_t>::min());
  CHECK(i == "-9223372036854775808");
}

TEST_CASE("cells: every type, nulls, timestamps as ISO strings", "[json]") {
  auto cell = [](const Column& c, size_t row) {
    std::string out;
    AppendJsonCell(out, c, row);
    return out;
  };
  Column b(TypeId::kBool);
  b.AppendInt(1);
  b.AppendInt(0);
  b.AppendNull();
  CHECK(cell(b, 0) == "true");
  CHECK(cell(b, 1) == "false");
  CHECK(cell(b, 2) == "null");

  Column t(TypeId::kTimestamp);
  t.AppendInt(1767225601500000);
  t.AppendInt(0);
  t.AppendNull();
  CHECK(cell(t, 0) == R"("2026-01-01T00:00:01.500000Z")");
  CHECK(cell(t, 1) == R"("1970-01-01T00:00:00Z")");
  CHECK(cell(t, 2) == "null");

  Column d(TypeId::kFloat64);
  d.AppendDouble(std::nan(""));
  d.AppendNull();
  CHECK(cell(d, 0) == "null");
  CHECK(cell(d, 1) == "null");

  Column s(TypeId::kString);
  s.AppendString("q\"");
  CHECK(cell(s, 0) == R"("q\"")");
}

TEST_CASE("rows: one object per row in schema order, keys escaped", "[json]") {
  auto schema =
      std::make_shared<const Schema>(std::vector<Field>{{"z", TypeId::kInt64, false},
                                                        {"we\"ird", TypeId::kString, true},
                                                        {"a", TypeId::kFloat64, true}});
  auto z = std::make_shared<Column>(TypeId::kInt64);
  auto w = std::make_shared<Column>(TypeId::kString);
  auto a = std::make_shared<Column>(TypeId::kFloat64);
  z->AppendInt(1);
  w->AppendString("x");
  a->AppendDouble(0.5);
  z->AppendInt(2);
  w->AppendNull();
  a->AppendNull();
  Batch batch(schema, {z, w, a}, 2);

  std::string row;
  AppendRowJson(row, batch, 0);
  CHECK(row == R"({"z":1,"we\"ird":"x","a":0.5})");

  std::string all;
  RowJsonEncoder(*schema).AppendBatch(all, batch);
  CHECK(all ==
        "{\"z\":1,\"we\\\"ird\":\"x\",\"a\":0.5}\n{\"z\":2,\"we\\\"ird\":null,\"a\":null}\n");

  // A schema with no fields still writes an object.
  auto empty = std::make_shared<const Schema>();
  Batch none(empty, {}, 1);
  std::string e;
  AppendRowJson(e, none, 0);
  CHECK(e == "{}");
}
