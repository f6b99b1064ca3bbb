/* A tiny DLL for the symbolization fixtures.  Every function except the
   leaf calls the next one and uses the result, so each has a real return
   address inside it. */

static int leaf_mix(int x) { return (x * 31) ^ (x >> 3); }

int internal_step(int x) { return leaf_mix(x + 1) * 5 - 2; }

static int helper_scale(int x) { return internal_step(x) * 7 + 3; }

__declspec(dllexport) int tiny_alloc(int n) { return helper_scale(n) * 3 + 1; }

int tiny_dispatch(int n) { return tiny_alloc(n ^ 0x55) + 9; }

__declspec(dllexport) int tiny_process(int n) { return tiny_dispatch(n) * 2 - n; }

__declspec(dllexport) int tiny_free(int n) { return leaf_mix(n) - 5; }
