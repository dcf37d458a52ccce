#include "queuectl/cli.hpp"

int main(int argc, char** argv) {
  return queuectl::cli::run(argc, argv, queuectl::cli::exec_helpers());
}
