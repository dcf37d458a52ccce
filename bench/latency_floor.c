/* The floor for dispatch latency: the job's own command, `date +%s.%N > FIFO`, started by
 * /bin/sh from a process that is already running, N times one after another. Prints, one
 * per line, the seconds from just before the spawn to the time the job wrote.
 * Usage: latency_floor N FIFO */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: latency_floor N FIFO\n");
    return 2;
  }
  int n = atoi(argv[1]);
  int fd = open(argv[2], O_RDWR); /* a reader always exists: the job's open never blocks */
  if (fd < 0) {
    perror(argv[2]);
    return 1;
  }
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "date +%%s.%%N > %s", argv[2]);
  char* args[] = {"/bin/sh", "-c", cmd, NULL};
  for (int i = 0; i < n; i++) {
    struct timespec t0;
    clock_gettime(CLOCK_REALTIME, &t0);
    pid_t pid;
    if (posix_spawn(&pid, "/bin/sh", NULL, NULL, args, environ) != 0) {
      perror("posix_spawn");
      return 1;
    }
    char buf[64] = {0};
    ssize_t k = read(fd, buf, sizeof buf - 1);
    int st;
    waitpid(pid, &st, 0);
    if (k <= 0) {
      fprintf(stderr, "latency_floor: no mark from the job\n");
      return 1;
    }
    printf("%.6f\n", atof(buf) - (t0.tv_sec + t0.tv_nsec / 1e9));
  }
  return 0;
}
