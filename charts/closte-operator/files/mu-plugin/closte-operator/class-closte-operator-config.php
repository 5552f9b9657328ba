<?php
/**
 * Where the sidecar is and how to authenticate to it, from wp-config.php constants.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * The plugin's settings. Nothing is stored in the database: the constants are
 * the only source, so a database dump never holds the token.
 */
final class Closte_Operator_Config {

	/** Where the sidecar listens when CLOSTE_OPERATOR_SIDECAR_URL is not set. */
	const DEFAULT_URL = 'http://127.0.0.1:8087';

	/** Seconds a request to the sidecar may take, connection included. */
	const DEFAULT_TIMEOUT = 2.0;

	/**
	 * Constructor.
	 *
	 * @param string $url         Base URL of the sidecar, without a trailing slash.
	 * @param string $token       The sidecar token ('' when none could be read).
	 * @param float  $timeout     Seconds per request to the sidecar.
	 * @param string $token_error Why there is no token, '' when there is one.
	 */
	public function __construct(
		public readonly string $url,
		public readonly string $token,
		public readonly float $timeout = self::DEFAULT_TIMEOUT,
		public readonly string $token_error = ''
	) {}

	/**
	 * Reads CLOSTE_OPERATOR_SIDECAR_URL, CLOSTE_OPERATOR_SIDECAR_TOKEN (or
	 * CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE) and CLOSTE_OPERATOR_SIDECAR_TIMEOUT.
	 *
	 * @return self
	 */
	public static function from_constants(): self {
		$url     = defined( 'CLOSTE_OPERATOR_SIDECAR_URL' ) ? (string) constant( 'CLOSTE_OPERATOR_SIDECAR_URL' ) : self::DEFAULT_URL;
		$timeout = defined( 'CLOSTE_OPERATOR_SIDECAR_TIMEOUT' ) ? (float) constant( 'CLOSTE_OPERATOR_SIDECAR_TIMEOUT' ) : self::DEFAULT_TIMEOUT;
		if ( $timeout <= 0 ) {
			$timeout = self::DEFAULT_TIMEOUT;
		}
		$token = '';
		$error = '';
		if ( defined( 'CLOSTE_OPERATOR_SIDECAR_TOKEN' ) ) {
			$token = trim( (string) constant( 'CLOSTE_OPERATOR_SIDECAR_TOKEN' ) );
		} elseif ( defined( 'CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE' ) ) {
			list( $token, $error ) = self::read_token_file( (string) constant( 'CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE' ) );
		} else {
			$error = 'neither CLOSTE_OPERATOR_SIDECAR_TOKEN nor CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE is defined in wp-config.php';
		}
		if ( '' === $token && '' === $error ) {
			$error = 'the sidecar token is empty';
		}
		return new self( rtrim( $url, '/' ), $token, $timeout, $error );
	}

	/**
	 * Reads a token file without ever raising a PHP warning.
	 *
	 * @param string $path The file (a mounted Kubernetes Secret, typically).
	 * @return array{0: string, 1: string} The token and an error ('' when read).
	 */
	public static function read_token_file( string $path ): array {
		if ( '' === $path || ! is_file( $path ) || ! is_readable( $path ) ) {
			return array( '', sprintf( 'cannot read the token file %s', $path ) );
		}
		$contents = file_get_contents( $path ); // phpcs:ignore WordPress.WP.AlternativeFunctions.file_get_contents_file_get_contents -- a local file.
		if ( false === $contents ) {
			return array( '', sprintf( 'cannot read the token file %s', $path ) );
		}
		$token = trim( $contents );
		return array( $token, '' === $token ? sprintf( 'the token file %s is empty', $path ) : '' );
	}
}
