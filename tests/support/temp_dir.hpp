// temp_dir: a fresh directory per test, removed afterwards (kept with QUEUECTL_KEEP_TEST_DIRS).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

class TempDir {
public:
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "queuectl-test-XXXXXX").string();
    if (!::mkdtemp(t.data())) {
      throw std::runtime_error("mkdtemp failed");
    }
    m_path = t;
  }
  ~TempDir() {
    if (!std::getenv("QUEUECTL_KEEP_TEST_DIRS")) {
      std::error_code ec;
      std::filesystem::remove_all(m_path, ec);
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return m_path; }

private:
  std::filesystem::path m_path;
};
