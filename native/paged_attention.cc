// Paged attention over fixed-size KV blocks (see glue_paged.cc).
#include "kernels.h"
