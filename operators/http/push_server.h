// The HTTP endpoint behind the `http` source: a cpp-httplib server that takes POSTed records and
// answers each request only once every record it carried has been acknowledged downstream (every
// sink wrote it durably, or it was dead-lettered), so a sender that gets a 2xx may forget it.
//
// Threading contract: the server has its own listening thread and a pool of `threads` handler
// threads; a handler blocks its own thread (never a TBB worker) until its request is
// acknowledged, rejected, timed out (503) or the server stops (503). Read is called serially
// from the runner's source node and waits at most kIdleWait + linger, so a stop request is seen
// promptly. Acknowledge is called from sink threads. The decoder reports the records it rejected
// through the shared RejectionLog before their batch can be acknowledged.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/operator.h"

namespace sluice {

// Why the decoder rejected records, by position, until the reader answers their request.
class RejectionLog {
 public:
  void Add(int64_t position, std::string reason);
  std::optional<std::string> Take(int64_t position);

 private:
  std::mutex mu_;
  std::unordered_map<int64_t, std::string> reasons_;
};

struct PushServerOptions {
  std::string node;  // "http '<name>'", for messages
  std::string host;
  int port = 0;
  std::string path = "/";
  size_t max_body_bytes = 1 << 20;
  std::chrono::milliseconds ack_timeout{30000};
  int threads = 32;
  std::chrono::milliseconds linger{5};
  // JSON lines: a body of several newline-separated JSON values is several records. Otherwise
  // the whole body is one record.
  bool split_json_lines = false;
};

// "host:port", "[v6]:port" → host and port; the error is the message only.
Status ParseListenAddress(std::string_view address, std::string* host, int* port);

// The records of a JSON-lines body: the JSON values separated by newlines outside any value (so
// a pretty-printed object is one record), each trimmed of surrounding white space.
std::vector<std::string_view> SplitJsonRecords(std::string_view body);

// `sluice validate --connect`: whether `host`:`port` can be bound now, as the server binds it
// (SO_REUSEADDR only), without listening. Returns what was found.
Result<std::string> CheckBindable(const std::string& host, int port);

class PushServer : public SourceReader {
 public:
  // Binds the address (errors name it) and starts serving.
  static Result<std::unique_ptr<PushServer>> Start(PushServerOptions options,
                                                   std::shared_ptr<RejectionLog> rejections);
  // Stops accepting, answers 503 to every request not acknowledged by now, joins the threads.
  ~PushServer() override;

  // The records of waiting requests: waits up to kIdleWait for the first one, then up to the
  // linger time for more (up to `max_records`). An empty chunk when none came; nullptr once the
  // server has stopped and no request is waiting.
  Result<std::shared_ptr<RawRecords>> Read(size_t max_records) override;
  void Acknowledge(const RawRecords& raw) override;

  static constexpr std::chrono::milliseconds kIdleWait{100};

 private:
  class Server;
  struct Request;
  PushServer(PushServerOptions options, std::shared_ptr<RejectionLog> rejections);
  void Handle(std::string body, int* status, std::string* answer);

  const PushServerOptions options_;
  const std::string origin_;  // "http://host:port/path", the origin of dead letters
  std::shared_ptr<RejectionLog> rejections_;
  std::unique_ptr<Server> server_;
  std::thread listener_;

  std::mutex mu_;
  std::condition_variable readable_;            // records queued, or stopping
  std::deque<std::shared_ptr<Request>> queue_;  // requests with records not yet read
  size_t queued_records_ = 0;
  // Requests not yet fully acknowledged (queued or read), by the position of their first record.
  std::map<int64_t, std::shared_ptr<Request>> pending_;
  int64_t next_position_ = 0;
  bool stopping_ = false;
  std::string failed_;  // why the server stopped on its own
};

}  // namespace sluice
