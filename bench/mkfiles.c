/* The floor for bulk enqueue: create N small files (about the size of a job) in one
 * directory, open + write + close each, no fsync. Prints the elapsed seconds.
 * Usage: mkfiles DIR N */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: mkfiles DIR N\n");
    return 2;
  }
  int n = atoi(argv[2]);
  char body[256];
  memset(body, 'x', sizeof body);
  char path[4096];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/f%08d.json", argv[1], i);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, body, sizeof body) != (ssize_t)sizeof body || close(fd) != 0) {
      perror(path);
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%.6f\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  return 0;
}
