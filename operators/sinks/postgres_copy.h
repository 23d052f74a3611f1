// PostgreSQL text helpers for the postgres sink: quoting identifiers, the COPY text format
// (tab-separated, \N for null, backslash escapes), and the column types Sluice's types map to.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/batch.h"

namespace sluice {

// "name" with embedded quotes doubled: safe for any identifier.
std::string QuotePgIdent(std::string_view name);

// Appends row `row` of `batch` as one COPY text line (with its newline): the fields at
// `fields`, in order.
void AppendCopyRow(std::string& out, const Batch& batch, size_t row, const std::vector<int>& fields);

// The column type a new table gets for a Sluice type.
const char* PgTypeFor(TypeId type);
// Whether an existing column of PostgreSQL type `data_type` (information_schema spelling) can
// take values of `type` without loss.
bool PgTypeAccepts(const std::string& data_type, TypeId type);

}  // namespace sluice
