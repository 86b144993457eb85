#include "store.h"

#include "redis_store.h"
#include "sqlite_store.h"

namespace sluice {

Result<std::unique_ptr<Store>> open_store(const StoreSpec& spec) {
  if (spec.kind == "redis") return open_redis_store(spec);
  return open_sqlite_store(spec);
}

}  // namespace sluice
