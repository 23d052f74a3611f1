// Helpers of `sluice dev-kafka` (operators/kafka/dev_kafka.cpp), for its tests.
#pragma once

#include <vector>

namespace sluice {

// Sets TCP_NODELAY on this process's listening sockets bound to `ports` (IPv4 or IPv6); the
// connections they accept inherit it. Returns how many sockets were set.
int SetNoDelayOnListeners(const std::vector<int>& ports);

}  // namespace sluice
