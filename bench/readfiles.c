/* The floor for `list`: read every file of a directory once (readdir, open, read, close),
 * as listing jobs must before it can order them. Usage: readfiles DIR */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: readfiles DIR\n");
    return 2;
  }
  DIR* d = opendir(argv[1]);
  if (!d) {
    perror(argv[1]);
    return 1;
  }
  char buf[65536];
  long files = 0;
  for (struct dirent* e; (e = readdir(d));) {
    if (e->d_name[0] == '.') {
      continue;
    }
    int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      continue;
    }
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
    files++;
  }
  closedir(d);
  return files > 0 ? 0 : 1;
}
