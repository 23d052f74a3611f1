// Registration of the operators that ship with Sluice. Explicit calls, not static registrars,
// so no operator silently vanishes when the linker drops an unreferenced object file.
#pragma once

#include "engine/operator.h"

namespace sluice {

void RegisterFileSource(Registry& registry);
void RegisterKafkaSource(Registry& registry);
void RegisterPostgresSource(Registry& registry);
void RegisterHttpSource(Registry& registry);
void RegisterDropFields(Registry& registry);
void RegisterSelect(Registry& registry);
void RegisterRename(Registry& registry);
void RegisterFlatten(Registry& registry);
void RegisterMap(Registry& registry);
void RegisterFilter(Registry& registry);
void RegisterPredict(Registry& registry);
void RegisterFileSink(Registry& registry);
void RegisterStdoutSink(Registry& registry);
void RegisterSqliteSink(Registry& registry);
void RegisterKafkaSink(Registry& registry);
void RegisterPostgresSink(Registry& registry);
void RegisterHttpSink(Registry& registry);
void RegisterDevKafka(Registry& registry);

inline void RegisterBuiltinOperators(Registry& registry) {
  RegisterFileSource(registry);
  RegisterKafkaSource(registry);
  RegisterPostgresSource(registry);
  RegisterHttpSource(registry);
  RegisterDropFields(registry);
  RegisterSelect(registry);
  RegisterRename(registry);
  RegisterFlatten(registry);
  RegisterMap(registry);
  RegisterFilter(registry);
  RegisterPredict(registry);
  RegisterFileSink(registry);
  RegisterStdoutSink(registry);
  RegisterSqliteSink(registry);
  RegisterKafkaSink(registry);
  RegisterPostgresSink(registry);
  RegisterHttpSink(registry);
  RegisterDevKafka(registry);
}

}  // namespace sluice
