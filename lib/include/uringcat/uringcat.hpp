// The umbrella header: everything a user of uringcat needs. It only includes.
#pragma once

#include "uringcat/cancellation.hpp"
#include "uringcat/connect_any.hpp"
#include "uringcat/connect_options.hpp"
#include "uringcat/endpoint.hpp"
#include "uringcat/error.hpp"
#include "uringcat/io_context.hpp"
#include "uringcat/kernel_limits.hpp"
#include "uringcat/resolve.hpp"
#include "uringcat/result.hpp"
#include "uringcat/task.hpp"
#include "uringcat/tcp_client.hpp"
#include "uringcat/tcp_listener.hpp"
#include "uringcat/timeout.hpp"
#include "uringcat/when_all.hpp"
#include "uringcat/when_any.hpp"
