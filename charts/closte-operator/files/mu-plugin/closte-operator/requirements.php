<?php
/**
 * The PHP version check. This file, like the loader, must parse on any PHP
 * WordPress runs on: no types, no syntax newer than PHP 5.6.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * Whether this PHP runs the plugin (8.1 or later).
 *
 * @param int $version_id PHP_VERSION_ID.
 * @return bool
 */
function closte_operator_php_supported( $version_id ) {
	return (int) $version_id >= 80100;
}

/**
 * The admin notice shown instead of the plugin on an older PHP: nothing is
 * routed or queued, and the network administrator is told why.
 *
 * @return void
 */
function closte_operator_php_notice() {
	if ( ! current_user_can( 'manage_network_options' ) ) {
		return;
	}
	printf(
		'<div class="notice notice-error closte-operator-php"><p><strong>closte-operator:</strong> %s</p></div>',
		esc_html(
			sprintf(
				/* translators: %s: the PHP version running */
				__( 'needs PHP 8.1 or later, and this site runs PHP %s: domain changes do not reach the sidecar and Closte calls are not routed until PHP is upgraded.', 'closte-operator' ),
				PHP_VERSION
			)
		)
	);
}
