// The kafka source's read-ahead: how much librdkafka may fetch before Sluice asks for it.
#pragma once

#include <cstdint>

#include "operators/kafka/client.h"

namespace sluice {

// librdkafka keeps up to 64 MiB of fetched messages per consumer by default, which would dwarf
// the batches Sluice holds in flight; 16 MiB keeps fetches large while bounding memory.
constexpr int64_t kReadAheadKiB = 16384;
// librdkafka's own largest fetch response (fetch.max.bytes).
constexpr int64_t kLibrdkafkaFetchMaxBytes = 52428800;
// librdkafka's default largest message (message.max.bytes); fetch.max.bytes may not be smaller.
constexpr int64_t kLibrdkafkaMessageMaxBytes = 1000000;

// The consumer settings that bound the read-ahead, for those of `user` (the source's
// `properties`) does not set, to be applied before them:
// - queued.max.messages.kbytes: kReadAheadKiB.
// - fetch.max.bytes: the read-ahead (the user's, if set), at most librdkafka's default.
//   librdkafka fetches again whenever the queue is below its bound, and one response of up to
//   fetch.max.bytes comes on top of it: on a topic of many partitions under a backlog, 50 MiB
//   responses (librdkafka's default) held a consumer's fetch buffers at 107 MiB, more than its
//   batches in flight, and took the memory benchmark to 286-338 MiB. Not smaller than the
//   read-ahead either: a response covers fewer partitions, so they are read at uneven paces,
//   and with responses of half of it the rows of a 10,000,000-message backlog reached the
//   database in a far more scattered key order, which cost the server a third more per row
//   (bench/README.md, "librdkafka's fetch responses"). Never below message.max.bytes (the
//   user's, else librdkafka's 1,000,000), which librdkafka requires.
KafkaProperties ReadAheadProperties(const KafkaProperties& user);

}  // namespace sluice
