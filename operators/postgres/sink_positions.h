// The positions of an exactly-once postgres sink (`delivery: exactly-once`): in each batch's
// transaction it locks the batch's partitions in the positions table, finds the rows written
// before (at positions below the stored ones: committed by an earlier run, or by another process
// of the pipeline that held the partition), and moves the positions to where the batch ends.
//
// It remembers the positions its own commits stored. When it knows every partition of a batch,
// one statement checks that they are still there, locks the rows and moves them on
// (PgPositionTable::StoreIfAt); when another writer has moved one since, the caller rolls the
// transaction back and locks again with `at_known` false, which reads the positions under lock
// (PgPositionTable::LoadForUpdate) and stores them at the end (Store).
//
// One per sink runtime, used by its serial Write only.
#pragma once

#include <string>

#include <pqxx/pqxx>

#include "engine/batch.h"
#include "operators/postgres/common.h"

namespace sluice {

class PgSinkPositions {
 public:
  PgSinkPositions(PgPositionTable table, std::string sink_name)
      : table_(std::move(table)), sink_name_(std::move(sink_name)) {}

  // Locks the partitions of `batch` for the rest of `tx` and finds their stored positions and
  // where the batch leaves them; a batch without raw records has none. With `at_known`, moves
  // them at once when every one is where this sink's last commits left it. False when one was
  // not: `tx` must then be rolled back.
  bool Lock(pqxx::transaction_base& tx, const Batch& batch, bool at_known);
  // The COPY payload of the rows not written before (all of `copy_text` when none was); `kept`
  // holds the payload when some rows are skipped, and their number is logged.
  const std::string& TakeNewRows(const Batch& batch, const std::string& copy_text,
                                 std::string& kept) const;
  // Whether row `row` of `batch` was written before.
  bool WrittenBefore(const Batch& batch, size_t row) const;
  // The batch's end positions, in the transaction that writes its rows, unless Lock stored them
  // already. A position never moves back.
  void Store(pqxx::transaction_base& tx);
  // The batch's transaction committed: its positions are what the table now stores.
  void Committed();
  // A failure may have left a commit in doubt: read the positions under lock next time.
  void Forget() { known_.clear(); }

 private:
  PgPositionTable table_;
  std::string sink_name_;
  // The batch being written: its partitions' stored positions, where it leaves them, and
  // whether Lock has stored those already.
  PgPositions stored_;
  PgPositions next_;
  bool stored_now_ = false;
  // The positions this sink's own transactions stored last, while no failure has left a commit
  // in doubt: what Lock expects to find.
  PgPositions known_;
};

}  // namespace sluice
