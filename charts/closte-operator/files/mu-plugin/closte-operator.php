<?php
/**
 * Plugin Name:       closte-operator
 * Description:       Sends WordPress's Closte API calls and its multisite domain changes to the closte-operator sidecar, which keeps them as MappedDomains in Kubernetes. WordPress holds no Closte key.
 * Version:           0.2.0
 * Requires at least: 6.1
 * Requires PHP:      8.1
 * Network:           true
 * License:           Apache-2.0
 * Text Domain:       closte-operator
 *
 * A must-use plugin: copy this file and the closte-operator/ folder beside
 * it into wp-content/mu-plugins/. Configure it in wp-config.php:
 *
 *     define( 'CLOSTE_OPERATOR_SIDECAR_URL', 'http://127.0.0.1:8087' );                        // the default; loopback or https only
 *     define( 'CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE', '/var/run/closte-sidecar/token' );          // or CLOSTE_OPERATOR_SIDECAR_TOKEN
 *     define( 'CLOSTE_CLIENT_API_KEY', 'any-random-placeholder' );                              // never a Closte key
 *
 * Ultimate Multisite's Closte integration sends nothing unless
 * CLOSTE_CLIENT_API_KEY is defined; the router routes only its calls that
 * carry exactly that placeholder.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

require_once __DIR__ . '/closte-operator/requirements.php';
if ( ! closte_operator_php_supported( PHP_VERSION_ID ) ) {
	// Nothing is routed rather than a fatal error, and the admin is told why.
	add_action( 'network_admin_notices', 'closte_operator_php_notice' );
	add_action( 'admin_notices', 'closte_operator_php_notice' );
	return;
}

require_once __DIR__ . '/closte-operator/class-closte-operator-config.php';
require_once __DIR__ . '/closte-operator/class-closte-operator-domains.php';
require_once __DIR__ . '/closte-operator/class-closte-operator-sidecar.php';
require_once __DIR__ . '/closte-operator/class-closte-operator-queue.php';
require_once __DIR__ . '/closte-operator/class-closte-operator-table.php';
require_once __DIR__ . '/closte-operator/class-closte-operator-router.php';
require_once __DIR__ . '/closte-operator/class-closte-operator-proof.php';
require_once __DIR__ . '/closte-operator/class-closte-operator-sync.php';
require_once __DIR__ . '/closte-operator/class-closte-operator-health.php';
require_once __DIR__ . '/closte-operator/class-closte-operator-plugin.php';
require_once __DIR__ . '/closte-operator/class-closte-operator-cli.php';
require_once __DIR__ . '/closte-operator/class-closte-operator-admin.php';
require_once __DIR__ . '/closte-operator/class-closte-operator-screen.php';

Closte_Operator_Plugin::instance()->register();
