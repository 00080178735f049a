// placeholder: implemented by the exporter work
#include "exporter/config.h"
