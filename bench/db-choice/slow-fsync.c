/* LD_PRELOAD shim that makes every fsync/fdatasync take FSYNC_DELAY_US longer (default 2000):
 * this VM's disk acknowledges a flush in about 0.1 ms, a real SSD without power-loss protection or
 * network block storage takes 0.5-10 ms. It shows which thread waits for the flush: a store that
 * syncs on the JavaScript thread stalls the event loop for the whole delay.
 * Build: gcc -shared -fPIC -O2 -o slow-fsync.so slow-fsync.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static long delay_us(void) {
  const char *v = getenv("FSYNC_DELAY_US");
  return v ? atol(v) : 2000;
}
static void pause_for_flush(void) {
  long us = delay_us();
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  nanosleep(&ts, NULL);
}
int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = dlsym(RTLD_NEXT, "fsync");
  pause_for_flush();
  return real(fd);
}
int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = dlsym(RTLD_NEXT, "fdatasync");
  pause_for_flush();
  return real(fd);
}
