// Loaded into every Node server under test (run with --expose-gc): SIGUSR2 runs a full GC, so
// idle-memory readings are not skewed by garbage that has not been collected yet.
process.on('SIGUSR2', () => globalThis.gc?.());
