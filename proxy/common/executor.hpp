// Somewhere to run a task later, on the thread that owns some state (a worker's loop). Lets
// shared components (the response cache) answer on the right thread without knowing what a
// worker is.
#pragma once

#include <functional>

namespace zonegate {

class Executor {
 public:
  virtual ~Executor() = default;
  // Runs `task` soon on the executor's thread; callable from any thread. False (and the task
  // dropped) once the executor is shutting down.
  virtual bool post(std::function<void()> task) = 0;
};

}  // namespace zonegate
